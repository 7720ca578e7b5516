"""Shared fixtures: a real redis-server, and a real Docker engine in swarm mode.

Tests that need the swarm are skipped, loudly, when no engine answers on a
developer's laptop; under CI (CI=true) a missing engine is an error instead,
so a broken CI machine can never pass by skipping.
"""

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
import redis

from deploy.polling import wait_until

ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server process of our own on a loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="dockercoins-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (make test installs it)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_until(client.ping, timeout=10, message="redis-server to answer PING")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer, settings) -> Iterator[str]:
    """A clean real Redis, wired into settings.REDIS_URL for the test."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a test that stopped Redis on purpose
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    settings.REDIS_URL = redis_server.url
    yield redis_server.url
    client.close()


def _docker_client():
    import docker

    try:
        client = docker.from_env(timeout=30)
        info = client.info()
    except Exception as exc:  # no socket, no daemon, permission denied
        return None, f"no Docker engine answers ({exc.__class__.__name__}: {exc})"
    if info.get("Swarm", {}).get("LocalNodeState") != "active":
        return None, "the Docker engine is not in swarm mode"
    return client, ""


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client for a real engine in swarm mode."""
    client, why = _docker_client()
    if client is None:
        if ON_CI:
            pytest.fail(f"CI needs a real swarm: {why}")
        message = f"SKIPPING REAL SWARM TESTS: {why}. Run `make test` to set one up."
        print(f"\n{'!' * 8} {message}")
        pytest.skip(message)
    yield client
    client.close()


def pytest_report_header(config) -> str:
    policy = "must run" if ON_CI else "skip without an engine"
    return f"CI={ON_CI} (real swarm tests {policy})"


# `make test` runs pytest-xdist with --dist loadgroup: each group runs whole
# on one worker. A module is a group (its module-scoped stack is deployed
# once); a tier whose session fixture owns one thing for all its modules is
# one group: the multi-node lab (one lab at a time on this machine) and the
# fault tier's single stack.
SESSION_TIERS = ("multinode", "faults")


# tryfirst: xdist's own hook turns the mark into the node id's group suffix,
# and this conftest is registered before xdist's worker plugin, so without it
# ours would run last and every test would be scheduled alone (seen in CI: a
# module's ordered workshop split over two workers, two labs at once).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        path = item.path.relative_to(config.rootpath)
        tier = path.parts[1] if len(path.parts) > 2 else ""
        group = tier if tier in SESSION_TIERS else path.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))
