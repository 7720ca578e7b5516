"""The worker's balancer: requests spread over every task of a service, with
keep-alive kept, and tasks that come and go followed. Real HTTP servers on
several loopback addresses (127.0.0.2, .3, ...) stand in for the tasks; the
resolver and the clock are the test's, DNS and time are not."""

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mining.balance import REFRESH, RoundRobin, resolve_all
from mining.keepalive import HttpError, HttpTimeout
from tests.conftest import free_port


class Task:
    """One replica: answers every request with its own name, keeps connections."""

    def __init__(self, ip: str) -> None:
        task = self
        self.requests = 0
        self.connections = 0
        self.open: list[socket.socket] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                task.connections += 1
                task.open.append(self.connection)

            def do_GET(self) -> None:
                task.requests += 1
                body = ip.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((ip, 0), Handler)
        self.server.daemon_threads = True
        self.address = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Like a container stopping: no listener, open connections closed."""
        self.server.shutdown()
        self.server.server_close()
        for conn in self.open:
            with contextlib.suppress(OSError):  # already closed
                conn.shutdown(socket.SHUT_RDWR)


class Dns:
    """What the name resolves to right now; a test changes it as Swarm would."""

    def __init__(self, tasks: list[Task]) -> None:
        self.answer: list[tuple[str, int]] = [
            (str(task.address[0]), int(task.address[1])) for task in tasks
        ]
        self.lookups = 0
        self.broken = False

    def __call__(self, host: str, port: int) -> list[tuple[str, int]]:
        self.lookups += 1
        if self.broken:
            raise OSError("Temporary failure in name resolution")
        return sorted(self.answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tasks() -> Iterator[list[Task]]:
    started = [Task(f"127.0.0.{n}") for n in range(2, 7)]
    yield started
    for task in started:
        task.stop()


def balancer(dns: Dns, clock: Clock) -> RoundRobin:
    return RoundRobin(
        "http://rng", connect_timeout=2, read_timeout=5, resolve=dns, clock=clock
    )


def answers(pool: RoundRobin, count: int) -> Counter:
    return Counter(pool.request("GET", "/32")[1].decode() for _ in range(count))


def test_requests_go_to_every_task_in_turn_over_one_connection_each(tasks):
    pool = balancer(Dns(tasks), Clock())

    seen = answers(pool, 50)

    assert seen == {task.address[0]: 10 for task in tasks}
    assert [task.connections for task in tasks] == [1] * 5


def test_ten_workers_load_five_tasks_evenly(tasks):
    dns, clock = Dns(tasks), Clock()
    pools = [balancer(dns, clock) for _ in range(10)]

    for pool in pools:
        answers(pool, 5)

    # Sticky connections would give each worker's five requests to one task.
    assert [task.requests for task in tasks] == [10] * 5
    assert [task.connections for task in tasks] == [10] * 5


def test_a_new_task_gets_requests_once_the_name_is_resolved_again(tasks):
    dns, clock = Dns(tasks[:2]), Clock()
    pool = balancer(dns, clock)
    answers(pool, 4)
    dns.answer.append(tasks[2].address)

    clock.now += REFRESH
    seen = answers(pool, 6)

    assert seen == {task.address[0]: 2 for task in tasks[:3]}


def test_a_task_that_stopped_costs_no_request_and_leaves_the_turn(tasks):
    dns, clock = Dns(tasks[:3]), Clock()
    pool = balancer(dns, clock)
    answers(pool, 3)
    tasks[1].stop()

    seen = answers(pool, 4)

    assert seen == {tasks[0].address[0]: 2, tasks[2].address[0]: 2}
    assert tasks[1].address not in pool.addresses


def test_a_failed_address_is_looked_up_again_soon_and_kept_out_once_dns_drops_it(
    tasks,
):
    dns, clock = Dns(tasks[:3]), Clock()
    pool = balancer(dns, clock)
    answers(pool, 3)
    tasks[1].stop()
    answers(pool, 1)  # may or may not hit the stopped task first
    answers(pool, 3)
    lookups = dns.lookups
    dns.answer.remove(tasks[1].address)

    clock.now += 1.0  # well before the regular refresh
    answers(pool, 1)

    assert dns.lookups == lookups + 1
    assert pool.addresses == sorted([tasks[0].address, tasks[2].address])


def test_a_task_dns_no_longer_lists_has_its_connection_closed(tasks):
    dns, clock = Dns(tasks[:2]), Clock()
    pool = balancer(dns, clock)
    answers(pool, 2)
    dns.answer.remove(tasks[0].address)

    clock.now += REFRESH
    seen = answers(pool, 3)

    assert seen == {tasks[1].address[0]: 3}
    assert pool.addresses == [tasks[1].address]


def test_it_fails_with_a_reason_when_every_task_is_down(tasks):
    dns = Dns(tasks[:2])
    pool = balancer(dns, Clock())
    tasks[0].stop()
    tasks[1].stop()

    with pytest.raises(HttpError, match="refused"):
        pool.request("GET", "/32")
    assert pool.addresses == []


def test_a_dns_failure_keeps_the_tasks_already_known(tasks):
    dns, clock = Dns(tasks[:2]), Clock()
    pool = balancer(dns, clock)
    answers(pool, 2)
    dns.broken = True

    clock.now += REFRESH
    seen = answers(pool, 2)

    assert seen == {task.address[0]: 1 for task in tasks[:2]}


def test_a_name_that_resolves_to_nothing_is_an_http_error():
    dns = Dns([])
    dns.broken = True

    with pytest.raises(HttpError, match="unknown host rng"):
        balancer(dns, Clock()).request("GET", "/32")


def test_it_resolves_a_name_to_every_address_with_the_system_resolver():
    port = free_port()

    assert ("127.0.0.1", port) in resolve_all("localhost", port)
    assert resolve_all("127.0.0.3", port) == [("127.0.0.3", port)]


def test_a_busy_task_fails_the_request_at_once_instead_of_trying_every_task(tasks):
    hung = socket.create_server(("127.0.0.7", 0))  # accepts, never answers
    busy = hung.getsockname()[:2]
    try:
        dns = Dns(tasks[:2])
        dns.answer.append(busy)
        pool = RoundRobin(
            "http://rng",
            connect_timeout=2,
            read_timeout=0.2,
            resolve=dns,
            clock=Clock(),
        )
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(pool.request("GET", "/32")[1].decode())
            except HttpTimeout:
                outcomes.append("timeout")
    finally:
        hung.close()

    assert outcomes.count("timeout") == 1
    assert sum(task.requests for task in tasks) == 2
    assert busy not in pool.addresses
