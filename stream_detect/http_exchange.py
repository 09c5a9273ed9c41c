"""One HTTP exchange bounded in time as a whole: connecting, the headers, the body.

urllib's ``timeout`` bounds each read of the socket, not the exchange: a
server that sends a byte of its status line, its headers or its body every
second, forever, holds the caller forever (a scrape that never ends stops
the loop, and no signal can end the run). :func:`read_within` shuts the
exchange's sockets down at its deadline, so a read waiting on them returns,
and the exchange fails with TimeoutError. An error answer's body, which
:func:`~stream_detect.http_failure.failure_reason` reads for its reason, is
read within the same deadline.

Redirects are followed to ``http://`` and ``https://`` only: urllib's own
handler would follow one to ``ftp://`` too, over a connection the deadline
does not reach (nor does anything here send a request there on purpose). A
request with a body (a POST) follows only a 307 or 308, with its body, as
those statuses mean: urllib would answer a 301, 302 or 303 with a GET
without the body, whose answer would then pass for the POST's. A redirect
not followed fails the exchange with HTTPError, its status the redirect's,
its reason naming the address asked and the target: a configuration to put
right, which asking again does not change.

>>> read_within("http://127.0.0.1:9/metrics", 0.5)
Traceback (most recent call last):
...
urllib.error.URLError: <urlopen error [Errno 111] Connection refused>
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import IO, Any

__all__ = ["ERROR_BODY_BYTES", "read_within"]

#: The most of an error answer's body kept for its reason.
ERROR_BODY_BYTES = 4096


def read_within(
    request: str | urllib.request.Request,
    timeout_s: float,
    max_bytes: int = 1 << 20,
    *,
    decode: bool = False,
) -> bytes:
    """The body of the answer to ``request``, the whole exchange within about ``timeout_s``.

    With ``decode``, a body the server gzip-compressed (``Content-Encoding``)
    is returned decompressed, ``max_bytes`` bounding it decompressed too; a
    body in another encoding is refused (ValueError). Without, the body is
    returned as it came (a caller that does not read it).

    Raises
    ------
    urllib.error.HTTPError
        An error status; its body (up to :data:`ERROR_BODY_BYTES`) is already read.
    TimeoutError
        The exchange did not finish in time.
    OSError
        No answer, or one cut off (an ``http.client`` error is given as OSError).
    ValueError
        An answer longer than ``max_bytes``; with ``decode``, one in an encoding
        not read, or gzip that does not decompress.
    """
    url = request if isinstance(request, str) else request.full_url
    sockets = _Sockets()
    opener = urllib.request.build_opener(
        _Handler(sockets), _SecureHandler(sockets), _HttpOnlyRedirects()
    )
    timer = threading.Timer(timeout_s, sockets.shut)
    timer.daemon = True
    timer.start()
    try:
        body = _exchange(opener, request, url, timeout_s, max_bytes, decode)
    except urllib.error.HTTPError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        if sockets.shut_down:
            raise TimeoutError(f"{url} did not finish its answer in {timeout_s:g} s") from exc
        if isinstance(exc, http.client.HTTPException):
            # A connection cut mid-answer (IncompleteRead) or a reply that is not HTTP.
            raise OSError(f"{url}: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        timer.cancel()
    if sockets.shut_down:  # the answer ended only because its sockets were shut
        raise TimeoutError(f"{url} did not finish its answer in {timeout_s:g} s")
    return body


def _exchange(
    opener: urllib.request.OpenerDirector,
    request: str | urllib.request.Request,
    url: str,
    timeout_s: float,
    max_bytes: int,
    decode: bool,
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with opener.open(request, timeout=timeout_s) as reply:
            encoding = reply.headers.get("Content-Encoding") if decode else None
            decoding = _Body(encoding, url, max_bytes)
            while chunk := reply.read1(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"{url} answered more than {max_bytes} bytes")
                chunks.append(decoding.decoded(chunk))
            if reply.length:  # read1 takes an early end quietly, read would not
                raise http.client.IncompleteRead(b"".join(chunks), reply.length)
            decoding.check_end()
    except urllib.error.HTTPError as error:
        try:
            body = error.read(ERROR_BODY_BYTES)
        except (OSError, ValueError, http.client.HTTPException):
            body = b""
        finally:
            error.close()
        raise urllib.error.HTTPError(
            error.filename, error.code, error.msg, error.hdrs, io.BytesIO(body)
        ) from None
    return b"".join(chunks)


class _Body:
    """An answer's body as sent (identity) or gzip-compressed, at most ``max_bytes`` decoded.

    Nothing here asks for gzip, but a server or proxy may compress anyway;
    its body read as it came would fail as text that is not the format,
    saying nothing of why. Another encoding raises ValueError naming it.

    >>> import gzip
    >>> body = _Body("gzip", "u", 100)
    >>> body.decoded(gzip.compress(b"up 1\\n")), body.check_end()
    (b'up 1\\n', None)
    >>> _Body("gzip", "u", 10).decoded(gzip.compress(b"#" * 100))
    Traceback (most recent call last):
    ...
    ValueError: u answered more than 10 bytes (gzip, decompressed)
    >>> _Body("br", "u", 10)
    Traceback (most recent call last):
    ...
    ValueError: u answered in Content-Encoding 'br', which is not read (only gzip)
    """

    def __init__(self, encoding: str | None, url: str, max_bytes: int) -> None:
        self.encoding = (encoding or "identity").strip().lower()
        self.url = url
        self.max_bytes = max_bytes
        self.size = 0
        self._gzip: zlib._Decompress | None = None
        if self.encoding in ("gzip", "x-gzip"):
            self._gzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        elif self.encoding != "identity":
            raise ValueError(
                f"{url} answered in Content-Encoding {encoding!r}, which is not read (only gzip)"
            )

    def decoded(self, chunk: bytes) -> bytes:
        """``chunk`` decoded; ValueError past ``max_bytes`` decoded or for broken gzip."""
        if self._gzip is None:
            return chunk
        try:
            # Bounded as it is decompressed: a small answer can unpack to gigabytes.
            data = self._gzip.decompress(chunk, self.max_bytes + 1 - self.size)
        except zlib.error as exc:
            raise ValueError(f"{self.url} answered gzip that does not decompress ({exc})") from None
        self.size += len(data)
        if self.size > self.max_bytes or self._gzip.unconsumed_tail:
            raise ValueError(
                f"{self.url} answered more than {self.max_bytes} bytes (gzip, decompressed)"
            )
        return data

    def check_end(self) -> None:
        """OSError if a gzip body ended before its end (an answer cut off)."""
        if self._gzip is not None and not self._gzip.eof:
            raise OSError(f"{self.url}: its gzip answer ends before the end of its data")


class _Sockets:
    """The sockets an exchange opened (a redirect opens another), shut down together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.shut_down = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.append(sock)
            if self.shut_down:
                _shut(sock)

    def shut(self) -> None:
        with self._lock:
            self.shut_down = True
            for sock in self._open:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing waits on it
        sock.shutdown(socket.SHUT_RDWR)


class _Connection(http.client.HTTPConnection):
    """A connection whose socket the exchange can shut at its deadline."""

    def __init__(self, *args: Any, sockets: _Sockets, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sockets = sockets

    def connect(self) -> None:
        super().connect()
        self._sockets.add(self.sock)


class _SecureConnection(_Connection, http.client.HTTPSConnection):
    """The same over TLS (the MRO puts HTTPS's connect under ``_Connection``'s)."""


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self.sockets = sockets

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_Connection, sockets=self.sockets), req)


class _SecureHandler(urllib.request.HTTPSHandler):
    def __init__(self, sockets: _Sockets) -> None:
        self.context = ssl.create_default_context()
        super().__init__(context=self.context)
        self.sockets = sockets

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_SecureConnection, sockets=self.sockets)
        return self.do_open(connection, req, context=self.context)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, but only to ``http://`` and ``https://``, and never a body lost.

    A redirect not followed raises HTTPError with the redirect's status and a
    reason naming the address asked and the target (see the module docstring).
    """

    def http_error_302(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
    ) -> Any:
        # Looked at before urllib's own check, which lets ftp:// through and
        # words its refusal of file:// otherwise.
        location = headers.get("location") or headers.get("uri")
        if location is not None:
            target = urllib.parse.urljoin(req.full_url, location)
            if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
                raise _not_followed(
                    req,
                    fp,
                    code,
                    msg,
                    headers,
                    target,
                    "only redirects to http:// and https:// are followed",
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if req.data is None:
            return super().redirect_request(req, fp, code, msg, headers, newurl)
        if code in (307, 308):  # the same request again, body and all, as these mean
            return urllib.request.Request(
                newurl,
                data=req.data,
                headers=dict(req.headers),  # not Host or Content-Length: set anew
                origin_req_host=req.origin_req_host,
                unverifiable=True,
                method=req.get_method(),
            )
        # urllib would send a GET without the body, whose answer would pass for the
        # POST's: alerts counted as delivered that never were.
        raise _not_followed(
            req,
            fp,
            code,
            msg,
            headers,
            newurl,
            "a POST follows only a 307 or 308 (another redirect makes it a GET without its body)",
        )


def _not_followed(
    req: urllib.request.Request,
    fp: IO[bytes],
    code: int,
    msg: str,
    headers: http.client.HTTPMessage,
    target: str,
    why: str,
) -> urllib.error.HTTPError:
    """The error of a redirect not followed: one line naming where from, where to, and why."""
    fp.close()  # urllib closes the redirect's answer only when it follows it
    reason = f"{msg}: {req.full_url} redirects to {target!r}; {why}"
    return urllib.error.HTTPError(req.full_url, code, reason, headers, io.BytesIO(b""))
