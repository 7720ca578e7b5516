"""The worker's keep-alive HTTP client, against scripted and real servers."""

import socket
import threading
from collections.abc import Iterator

import pytest

from mining.keepalive import HttpError, KeepAliveClient
from tests.conftest import free_port


class ScriptedServer:
    """Answers each request with the next canned answer; may hang up after it."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as reader:
                while self.answers:
                    request = self._read_request(reader)
                    if request is None:
                        break
                    self.requests.append(request)
                    answer, hang_up = self.answers.pop(0)
                    conn.sendall(answer)
                    if hang_up:
                        break

    @staticmethod
    def _read_request(reader) -> bytes | None:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return None
            head += line
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return head + reader.read(length)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


@pytest.fixture
def scripted() -> Iterator:
    servers = []

    def start(*answers: tuple[bytes, bool]) -> ScriptedServer:
        servers.append(ScriptedServer(list(answers)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client(url: str, read_timeout: float = 5) -> KeepAliveClient:
    return KeepAliveClient(url, connect_timeout=2, read_timeout=read_timeout)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_it_reuses_one_connection_for_many_requests(scripted):
    server = scripted((OK, False), (OK, False), (OK, False))
    http = client(server.url)

    assert [http.request("GET", "/32") for _ in range(3)] == [(200, b"ok")] * 3
    assert server.connections == 1


def test_it_posts_the_body_with_its_length(scripted):
    server = scripted((OK, False))

    client(server.url).request("POST", "/", b"\x00\x01\x02")

    assert server.requests[0].startswith(b"POST / HTTP/1.1\r\n")
    assert b"Content-Length: 3\r\n" in server.requests[0]
    assert server.requests[0].endswith(b"\r\n\r\n\x00\x01\x02")


def test_it_reconnects_once_when_the_server_closed_an_idle_connection(scripted):
    server = scripted((OK, True), (OK, False))
    http = client(server.url)
    http.request("GET", "/1")

    assert http.request("GET", "/2") == (200, b"ok")
    assert server.connections == 2


def test_it_reads_a_chunked_answer(scripted):
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    server = scripted((chunked, False), (OK, False))
    http = client(server.url)

    assert http.request("GET", "/") == (200, b"abcde")
    assert http.request("GET", "/") == (200, b"ok")  # still in step


def test_it_reads_an_answer_ended_by_closing_the_connection(scripted):
    server = scripted((b"HTTP/1.0 200 OK\r\n\r\nuntil the end", True))

    assert client(server.url).request("GET", "/") == (200, b"until the end")


def test_it_reconnects_after_an_http_1_0_answer(scripted):
    classic = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = scripted((classic, True), (classic, True))
    http = client(server.url)

    assert http.request("GET", "/") == http.request("GET", "/") == (200, b"ok")
    assert server.connections == 2


def test_it_returns_error_statuses_with_their_body(scripted):
    server = scripted((b"HTTP/1.1 400 Bad\r\nContent-Length: 3\r\n\r\nbad", False))

    assert client(server.url).request("GET", "/0") == (400, b"bad")


def test_it_refuses_an_answer_that_is_not_http(scripted):
    server = scripted((b"SSH-2.0-OpenSSH\r\n", True))

    with pytest.raises(HttpError, match="not an HTTP answer"):
        client(server.url).request("GET", "/")


def test_it_reports_a_refused_connection():
    with pytest.raises(HttpError, match="refused"):
        client(f"http://127.0.0.1:{free_port()}").request("GET", "/")


def test_it_gives_up_on_a_server_that_never_answers():
    hung = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(HttpError, match="timed out"):
            client(f"http://127.0.0.1:{hung.getsockname()[1]}", 0.2).request("GET", "/")
    finally:
        hung.close()


@pytest.mark.parametrize("url", ["rng:80", "https://rng", "http://"])
def test_it_refuses_urls_it_cannot_use(url):
    with pytest.raises(ValueError):
        client(url)


def test_it_talks_to_our_real_rng_and_hasher(pipeline):
    rng, hasher = client(pipeline.rng_url), client(pipeline.hasher_url)

    status, random_bytes = rng.request("GET", "/32")
    assert (status, len(random_bytes)) == (200, 32)
    status, digest = hasher.request("POST", "/", random_bytes)
    assert status == 200 and len(digest) == 64
