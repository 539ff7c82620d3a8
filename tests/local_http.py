"""A local HTTP server on 127.0.0.1 that stands in for the hosts weights come from (tests never touch the
network): it serves bytes at /file.bin, honours `Range: bytes=N-` (206, 416 past the end) unless told not to,
can cut its first response short or send slowly, and records the Range header of every request."""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DATA = random.Random(0).randbytes(300_000)
DATA_SHA256 = hashlib.sha256(DATA).hexdigest()
CUT_AT = 100_000  # where the first response of an "interrupted" server stops


@dataclass
class ServerState:
    """What the handler serves and what it saw: one Range header (or None) per request."""

    data: bytes = DATA
    honour_range: bool = True
    cut_first_response: bool = False
    seconds_per_chunk: float = 0.0  # send the body in 10 KB chunks this far apart (a slow host)
    ranges: list[str | None] = field(default_factory=list)


class RangeHandler(BaseHTTPRequestHandler):
    """Serves `state.data` at /file.bin: 206 for `Range: bytes=N-` (416 past the end), else 200."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        requested = self.headers.get("Range")
        state.ranges.append(requested)
        if self.path != "/file.bin":
            self.send_error(404)
            return
        start = 0
        if requested and state.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(state.data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(state.data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(state.data) - 1}/{len(state.data)}")
        else:
            self.send_response(200)
        body = state.data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_first_response:  # promise the whole body, send part of it, hang up (HTTP/1.0 closes)
            state.cut_first_response = False
            body = body[:CUT_AT]
        for start in range(0, len(body), 10_000):
            self.wfile.write(body[start:start + 10_000])
            time.sleep(state.seconds_per_chunk)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    """(URL of /file.bin, the server's state) for a fresh local server."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin", httpd.state  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()
    thread.join()
