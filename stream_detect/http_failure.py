"""What went wrong in an HTTP exchange, said in one line an operator can act on.

A server that answers with an error status usually says why in the body:
Alertmanager as a JSON string or ``{"code": 400, "message": ...}``,
Prometheus as ``{"status": "error", "error": ...}``, an exporter or a proxy
as plain text. :func:`failure_reason` puts that reason next to the status,
so the line on stderr names the label Alertmanager refused or the query
Prometheus could not parse, not just "HTTP Error 400".
"""

from __future__ import annotations

import http.client
import urllib.error

import orjson

__all__ = ["answer_reason", "failure_reason"]

#: The most of an error answer read for its reason, and the longest reason kept.
_BODY_BYTES = 4096
_REASON_CHARS = 300


def answer_reason(body: bytes) -> str:
    """The reason an error answer's body gives, on one line ('' if it gives none).

    >>> answer_reason(b'"start time must be before end time"')
    'start time must be before end time'
    >>> answer_reason(b'{"status":"error","errorType":"bad_data","error":"parse error"}')
    'parse error'
    >>> answer_reason(b'{"code":400,"message":"bad alerts"}')
    'bad alerts'
    >>> answer_reason(b"collector failed\\nsecond line\\n")
    'collector failed second line'
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        parsed = parsed.get("message") or parsed.get("error")
    text = parsed if isinstance(parsed, str) else body.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def failure_reason(error: BaseException) -> str:
    """The one-line reason of a failed request (it reads an error answer's body, if any).

    >>> import urllib.error
    >>> failure_reason(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")))
    '[Errno 111] Connection refused'
    >>> failure_reason(TimeoutError("timed out"))
    'timed out'
    >>> failure_reason(http.client.IncompleteRead(b"{", 99))
    'IncompleteRead: IncompleteRead(1 bytes read, 99 more expected)'

    The reason is one line even where Python's own message is not (urllib's
    for a redirect loop):

    >>> failure_reason(urllib.error.HTTPError("u", 302, "loops.\\nThe last was:\\nFound", {}, None))
    'HTTP 302 loops. The last was: Found'
    """
    return " ".join(_reason(error).split())


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        status = f"HTTP {error.code} {error.reason}".rstrip()
        try:
            reason = answer_reason(error.read(_BODY_BYTES))
        except (OSError, ValueError, http.client.HTTPException):
            reason = ""
        finally:
            error.close()
        return f"{status}: {reason}" if reason else status
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, http.client.HTTPException):
        return f"{type(error).__name__}: {error}"
    return str(error) or type(error).__name__
