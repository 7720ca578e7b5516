"""One slow client costs only its own connection.

Each test holds connections that never finish their request, then checks that
another client is still answered, before gunicorn's keepalive (15 s, the
longest a request's headers may take) could have dropped the stalled ones.
The servers run as the image runs them (deploy/gunicorn.conf.py).
"""

import hashlib
import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from deploy.polling import wait_until
from tests.mining.conftest import Served, serve_role, stop

# Well under gunicorn's keepalive (15 s): an answer within this cannot come
# from the stalled connections having been dropped.
DEADLINE = 10.0


def address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split(":")
    return host, int(port)


@contextmanager
def stalled(url: str, opening: bytes, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that each sent `opening` and then nothing more."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(address(url), timeout=5)
            sock.sendall(opening)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def answers(url: str, method: str = "GET", path: str = "/", body=None) -> bytes:
    conn = http.client.HTTPConnection(*address(url), timeout=2)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        assert response.status == 200, response.status
        return response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def webui(redis_server, tmp_path_factory) -> Iterator[Served]:
    served = serve_role(
        "webui",
        REDIS_URL=redis_server.url,
        DATABASE_PATH=str(tmp_path_factory.mktemp("webui") / "db.sqlite3"),
    )
    yield served
    stop(served)


def test_a_half_sent_request_line_does_not_stop_rng(pipeline):
    with stalled(pipeline.rng_url, b"GET /5 HTTP/1.1\r\n", count=1):
        got = wait_until(
            lambda: answers(pipeline.rng_url, path="/16"),
            timeout=DEADLINE,
            message="rng to answer beside a stalled connection",
        )

    assert len(got) == 16


@pytest.fixture(scope="module")
def slow_rng() -> Iterator[Served]:
    """rng with a device delay, so concurrent draws really wait for its lock."""
    served = serve_role("rng", RNG_DELAY="0.05")
    yield served
    stop(served)


def test_rng_answers_every_one_of_many_concurrent_requests(slow_rng):
    # One draw at a time (a lock that yields to the other connections while
    # held), 20 connections waiting for it: all get their bytes, none hangs.
    results: list[int] = []

    def draw() -> None:
        conn = http.client.HTTPConnection(*address(slow_rng.url), timeout=DEADLINE)
        try:
            conn.request("GET", "/8")
            results.append(len(conn.getresponse().read()))
        finally:
            conn.close()

    threads = [threading.Thread(target=draw) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)

    assert results == [8] * 20


def test_many_stalled_connections_do_not_stop_the_webui(webui):
    with stalled(webui.url, b"GET /api/totals/ HTTP/1.1\r\nHost: x\r\n", count=200):
        got = wait_until(
            lambda: answers(webui.url, path="/json"),
            timeout=DEADLINE,
            message="the webui to answer beside 200 stalled connections",
        )

    assert b"hashes" in got


def test_bodies_shorter_than_their_content_length_do_not_stop_the_hasher(pipeline):
    opening = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"
    with stalled(pipeline.hasher_url, opening, count=200):
        got = wait_until(
            lambda: answers(pipeline.hasher_url, "POST", body=b"abc"),
            timeout=DEADLINE,
            message="the hasher to answer beside 200 unfinished bodies",
        )

    assert got.decode() == hashlib.sha256(b"abc").hexdigest()
