"""A minimal keep-alive HTTP/1.1 client for the worker's two calls per hash.

Measured on these machines against our gunicorn rng: http.client spends
about 250 us of CPU per request (most of it parsing headers with the email
package), this client about 70 us, and a request's round trip drops by a
quarter. Per hash that is two requests, on the hot path of every worker.

It speaks just what rng and hasher (ours and the classic images) answer:
a status line, headers, and a body sized by Content-Length, chunked, or ended
by closing the connection. Anything else is an HttpError.
"""

import io
import socket
from urllib.parse import urlsplit

MAX_HEADER_LINES = 100
MAX_BODY = 1024 * 1024


class HttpError(Exception):
    """The server could not be reached or answered something unreadable."""


class HttpTimeout(HttpError):
    """Connected, but no answer in time: the server is busy, not gone."""


def split_url(base_url: str) -> tuple[str, int, str]:
    """(host, port, path prefix) of an http:// URL; ValueError for anything else."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"URL must be http://host[:port]: {base_url}")
    return parts.hostname, parts.port or 80, parts.path.rstrip("/")


class KeepAliveClient:
    """One connection to one host, reused across requests (not thread-safe).

    `address` (ip, port) connects somewhere else than the URL's host while the
    Host header still names it: one client per task of a service
    (mining/balance.py).
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        address: tuple[str, int] | None = None,
    ) -> None:
        host, port, self.prefix = split_url(base_url)
        self.address = address or (host, port)
        parts = urlsplit(base_url)
        header_host = parts.hostname if parts.port in (None, 80) else parts.netloc
        self._host = (header_host or host).encode()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._sock: socket.socket | None = None
        self._reader: io.BufferedReader | None = None

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request and return (status, body); raise HttpError.

        A server may close an idle keep-alive connection just as we reuse it:
        that first failure is retried once on a fresh connection. Both of our
        calls (read random bytes, hash bytes) are safe to repeat.
        """
        for attempt in (1, 2):
            reused = self._sock is not None
            try:
                return self._exchange(method, path, body)
            except (OSError, ValueError, HttpError) as exc:
                self.close()
                if isinstance(exc, TimeoutError):  # busy, not stale: no retry
                    raise HttpTimeout(_describe(exc)) from exc
                if not (reused and attempt == 1):
                    if isinstance(exc, HttpError):
                        raise
                    raise HttpError(_describe(exc)) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._reader = None, None

    def _connect(self) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=self.connect_timeout)
        except OSError as exc:  # a connect timeout too: the address is gone
            raise HttpError(_describe(exc)) from exc
        sock.settimeout(self.read_timeout)
        # One small request, one small answer: do not wait to coalesce.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._reader = sock, sock.makefile("rb")

    @property
    def reader(self) -> io.BufferedReader:
        if self._reader is None:
            raise HttpError("not connected")
        return self._reader

    def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self._sock is None:
            self._connect()
        assert self._sock is not None
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode()
            + b"Host: "
            + self._host
            + b"\r\nContent-Length: %d\r\n" % len(body)
        )
        if body:
            head += b"Content-Type: application/octet-stream\r\n"
        self._sock.sendall(head + b"\r\n" + body)  # one write: one packet
        status, version = self._status_line()
        headers = self._headers()
        data = self._body(headers)
        keep = headers.get(b"connection", b"").lower()
        if keep == b"close" or (version == b"HTTP/1.0" and keep != b"keep-alive"):
            self.close()
        return status, data

    def _status_line(self) -> tuple[int, bytes]:
        line = self.reader.readline(1024)
        if not line:
            raise HttpError("connection closed by the server")
        version, _, rest = line.partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise HttpError(f"not an HTTP answer: {line[:40]!r}")
        return int(rest[:3]), version

    def _headers(self) -> dict[bytes, bytes]:
        headers: dict[bytes, bytes] = {}
        for _ in range(MAX_HEADER_LINES):
            line = self.reader.readline(8192)
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        raise HttpError("too many header lines")

    def _body(self, headers: dict[bytes, bytes]) -> bytes:
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            return self._chunked()
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            if length > MAX_BODY:
                raise HttpError(f"answer of {length} bytes is too large")
            data = self.reader.read(length)
            if len(data) != length:
                raise HttpError("connection closed mid-answer")
            return data
        # HTTP/1.0 style: the body ends when the server closes the connection.
        data = self.reader.read(MAX_BODY + 1)
        self.close()
        if len(data) > MAX_BODY:
            raise HttpError("answer too large")
        return data

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.reader.readline(1024).split(b";")[0], 16)
            if size == 0:
                self._headers()  # trailers, then the blank line
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise HttpError("answer too large")
            parts.append(self.reader.read(size))
            self.reader.readline(16)  # the CRLF after each chunk


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
