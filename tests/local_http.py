"""Small HTTP servers the tests start on a free loopback port: proxies, stub exporters.

A test defines a handler class (usually a subclass of the product's own
:class:`stream_detect.server.QuietHandler`) and serves it with
:class:`LocalServer`, which it closes when done.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """``handler`` served on a free loopback port, in a thread, until :meth:`close`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        #: ``127.0.0.1:PORT``
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.address}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
