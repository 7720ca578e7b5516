"""Spread one worker thread's requests over every task of a service.

A keep-alive connection sticks to the one task it reached first: ten workers
over five rng replicas then pile up on some replicas and leave others idle
(29 hashes/s instead of about 32, docs/performance.md). Swarm's DNS answers
every running task's address for `tasks.<service>` (and for the service name
itself with `endpoint_mode: dnsrr`). So the balancer resolves the name, keeps one
keep-alive connection per address, and sends each request to the next address
in turn. A task listed before its server listens (our stack has no engine
health check to hold it back) just refuses: the request goes to the next.

Every thread walks the addresses in the same sorted order from its own random
start: the threads then fall into step one replica apart, which a simulation
of ten workers over five 10-requests/s replicas put at 32 hashes/s, against
30 for a random order per thread and 28 for a random replica per request.

Tasks come and go (scaling, rolling updates, a node lost): the name is
resolved again every REFRESH seconds, and sooner after an address failed.
"""

import random
import socket
import time
from collections.abc import Callable

from mining.keepalive import HttpError, HttpTimeout, KeepAliveClient, split_url

Address = tuple[str, int]
Resolver = Callable[[str, int], list[Address]]

REFRESH = 5.0
# After a failure the name is looked up again, but not more often than this:
# a service with no task at all must not turn every retry into a DNS query.
RETRY_RESOLVE = 0.5


def resolve_all(host: str, port: int) -> list[Address]:
    """Every IPv4/IPv6 address `host` resolves to, sorted; raise OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # AF_INET/AF_INET6 sockaddrs start with (host, port).
    return sorted({(str(info[4][0]), int(info[4][1])) for info in infos})


class RoundRobin:
    """Requests to one URL's host, over every address it resolves to.

    Not thread-safe: each mining thread has its own, with its own connections.
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        refresh: float = REFRESH,
        resolve: Resolver = resolve_all,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url
        self.host, self.port, _ = split_url(base_url)  # ValueError on a bad URL
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.refresh = refresh
        self._resolve = resolve
        self._clock = clock
        self._clients: dict[Address, KeepAliveClient] = {}
        self._order: list[Address] = []
        self._next = random.randrange(1 << 16)
        self._resolved_at = float("-inf")
        self._failed = False

    @property
    def addresses(self) -> list[Address]:
        """The addresses requests go to now, in their turn order."""
        return list(self._order)

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request to the next address; return (status, body).

        An address that cannot be reached is dropped until the name resolves
        to it again, and the request goes to the next one; HttpError when every
        address failed or the name resolves to none. Our two calls (read random
        bytes, hash bytes) are safe to repeat. A task that accepted the request
        but did not answer in time (HttpTimeout) is busy, not gone: that error
        is raised at once rather than making the caller wait once per address.
        """
        self._maybe_resolve()
        error: HttpError | None = None
        while self._order:
            turn = self._next % len(self._order)
            address = self._order[turn]
            try:
                answer = self._clients[address].request(method, path, body)
            except HttpError as exc:
                error = exc
                self._drop(address)
                self._next = turn  # the address after it slid into its place
                if isinstance(exc, HttpTimeout):
                    raise
                continue
            self._next = turn + 1
            return answer
        if error is None:
            raise HttpError(f"no address for {self.host} (nothing resolved)")
        raise error

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._order.clear()

    def _maybe_resolve(self) -> None:
        since = self._clock() - self._resolved_at
        due = since >= self.refresh
        retry = (self._failed or not self._order) and since >= RETRY_RESOLVE
        if due or retry:
            self._update()

    def _update(self) -> None:
        self._resolved_at = self._clock()
        try:
            found = self._resolve(self.host, self.port)
        except OSError as exc:
            # DNS itself failing says nothing about the tasks we reach: keep
            # them, and let the next failure or refresh ask again.
            self._failed = True
            if not self._order:
                raise HttpError(f"unknown host {self.host} ({exc})") from exc
            return
        self._failed = False
        for address in set(self._clients) - set(found):
            self._clients.pop(address).close()
        for address in found:
            if address not in self._clients:
                self._clients[address] = KeepAliveClient(
                    self.base_url,
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    address=address,
                )
        self._order = sorted(found)  # the same turn order in every thread

    def _drop(self, address: Address) -> None:
        self._clients.pop(address).close()
        self._order.remove(address)
        self._failed = True
