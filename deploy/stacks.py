"""Real DockerCoins stacks for tests and benchmarks: deployed under a unique
name on free loopback ports, waited for with deadlines, and always removed.
Shared by tests/ and bench/ (not a test module: benchmarks must not import
from tests/).

    with deployed_stack({"WORKER_REPLICAS": "2"}) as stack:
        stack.json()["hashes"]

Deploying, waiting and removing are deploy/swarmops/stack.py's, the same code
`make up` runs (compose files, the no-IPVS override, the live modes, the
removal that waits until networks are gone), so tests exercise what users run.
"""

import http.client
import json
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.swarmops import stack as swarm_stack
from deploy.swarmops.engine import client, host_of
from deploy.swarmops.images import stack_images
from deploy.swarmops.layout import DEPLOY_DIR, REPO, TEST_PREFIX, service_name
from deploy.swarmops.procs import StackError, run

__all__ = ["REPO", "Stack", "StackError", "deployed_stack", "docker", "free_ports"]

CONVERGE_TIMEOUT = 240
REMOVE_TIMEOUT = 240
HTTP_TIMEOUT = 10
# After convergence: the engine counts a task running before gunicorn
# listens, and under load a published port answers "connection reset" for
# 30 s or more. Seconds to wait until every published role answers HTTP.
SERVE_TIMEOUT = 120
# The path each published role is asked for; any HTTP status counts.
SERVE_PATHS = {"webui": "/json", "rng": "/", "hasher": "/", "prometheus": "/-/ready"}
# No proxy for loopback, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that nothing listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def docker(*args: str, timeout: float = 60) -> str:
    """The docker CLI's output; StackError with its output when it fails."""
    return run(["docker", *args], timeout=timeout)


def missing_images(env: dict[str, str]) -> list[str]:
    """The images a stack deployed with `env` needs that the engine lacks."""
    engine = client(host_of(env))
    missing = []
    for ref in stack_images(env):
        try:
            engine.images.get(ref)
        except Exception:  # ImageNotFound, or an engine that does not answer
            missing.append(ref)
    return missing


@dataclass
class Stack:
    """A deployed stack; its HTTP roles are published on 127.0.0.1 ports."""

    name: str
    env: dict[str, str] = field(repr=False)
    compose_dir: Path = field(default=DEPLOY_DIR, repr=False)

    @property
    def webui_port(self) -> int:
        return int(self.env["WEBUI_PORT"])

    @property
    def rng_port(self) -> int:
        return int(self.env["RNG_PORT"])

    @property
    def hasher_port(self) -> int:
        return int(self.env["HASHER_PORT"])

    @property
    def prometheus_port(self) -> int:
        return int(self.env["PROMETHEUS_PORT"])

    def service(self, short: str) -> str:
        """The swarm service's full name: `worker` -> `<stack>_worker`."""
        return service_name(self.name, short)

    def url(self, short: str, path: str = "/") -> str:
        port = {"webui": self.webui_port, "rng": self.rng_port}
        port["hasher"] = self.hasher_port
        port["prometheus"] = self.prometheus_port
        return f"http://127.0.0.1:{port[short]}{path}"

    def get(self, short: str, path: str = "/", *, data: bytes | None = None) -> Any:
        """An HTTP response from a published role (raises HTTPError on 4xx/5xx)."""
        return _opener.open(
            urllib.request.Request(self.url(short, path), data=data),
            timeout=HTTP_TIMEOUT,
        )

    def json(self) -> dict:
        """The webui's classic GET /json: {"coins", "hashes", "now"}."""
        with self.get("webui", "/json") as response:
            return json.load(response)

    def rate(self, window: float) -> float:
        """Hashes per second from /json over `window` seconds of real time.

        Workers write their count about once a second, so a window of 10 s or
        more keeps that granularity under ~10%.
        """
        first = self.json()
        time.sleep(window)
        last = self.json()
        return (last["hashes"] - first["hashes"]) / (last["now"] - first["now"])

    def deploy(self) -> None:
        swarm_stack.deploy(self.name, self.env, compose_dir=self.compose_dir)

    def wait(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Wait until every service runs all its tasks, healthy."""
        swarm_stack.wait(self.name, self.env, timeout=timeout)

    def published(self) -> list[str]:
        """The roles this stack publishes on loopback (Prometheus when run)."""
        roles = ["webui", "rng", "hasher"]
        if self.env.get("PROMETHEUS_REPLICAS", "1") != "0":
            roles.append("prometheus")
        return roles

    def wait_serving(self, timeout: float = SERVE_TIMEOUT) -> None:
        """Wait until every published role answers HTTP (any status).

        Raises StackError naming the roles still silent after `timeout` s.
        """
        deadline = time.monotonic() + timeout
        silent = self.published()
        while True:
            silent = [role for role in silent if not self._answers(role)]
            if not silent or time.monotonic() > deadline:
                break
            time.sleep(1)
        if silent:
            raise StackError(
                f"stack {self.name}: {', '.join(silent)} answered no HTTP "
                f"within {timeout:.0f} s of converging"
            )

    def _answers(self, role: str) -> bool:
        try:
            with self.get(role, SERVE_PATHS[role]):
                return True
        except urllib.error.HTTPError:
            return True  # an HTTP status: the server listens
        except (OSError, http.client.HTTPException):
            return False  # refused, reset, timed out, closed mid-response

    def pending(self) -> str:
        """The services not converged yet, one per line ("" when all are)."""
        return "\n".join(swarm_stack.pending(self.name, self.env))

    def scale(
        self, short: str, replicas: int, *, timeout: float = CONVERGE_TIMEOUT
    ) -> None:
        client(host_of(self.env)).services.get(self.service(short)).scale(replicas)
        self.wait(timeout)

    def remove(self) -> None:
        """Remove the stack and its volumes; wait until nothing is left."""
        swarm_stack.remove(self.name, self.env, volumes=True, timeout=REMOVE_TIMEOUT)


def new_stack(env: dict[str, str] | None = None, *, prefix: str = TEST_PREFIX) -> Stack:
    """A Stack with a unique name and free ports; not deployed yet.

    Without Prometheus unless `env` asks for it (PROMETHEUS_REPLICAS=1): most
    tests never query it, and CI runs many stacks on two cores. `make up`
    runs it (the stack file's default).
    """
    webui, rng, hasher, prometheus = free_ports(4)
    defaults = {
        "WEBUI_PORT": str(webui),
        "RNG_PORT": str(rng),
        "HASHER_PORT": str(hasher),
        "PROMETHEUS_PORT": str(prometheus),
        "PROMETHEUS_REPLICAS": "0",
    }
    merged = {**defaults, **(env or {})}
    return Stack(name=prefix + secrets.token_hex(4), env=merged)


@contextmanager
def deployed(stack: Stack) -> Iterator[Stack]:
    """Deploy `stack` (not waiting), yield it, always remove it; its owner
    file keeps `make test`'s prune off it meanwhile."""
    owner = swarm_stack.owner_file(stack.name)
    owner.parent.mkdir(parents=True, exist_ok=True)
    owner.write_text(str(os.getpid()))
    with ExitStack() as cleanup:
        cleanup.callback(owner.unlink, missing_ok=True)
        cleanup.callback(stack.remove)
        stack.deploy()
        yield stack


@contextmanager
def deployed_stack(
    env: dict[str, str] | None = None,
    *,
    timeout: float = CONVERGE_TIMEOUT,
    prefix: str = TEST_PREFIX,
    compose_dir: Path = DEPLOY_DIR,
) -> Iterator[Stack]:
    """Deploy the stack, wait until it converged, yield it, always remove it.

    `env` sets the stack file's variables (DOCKERCOINS_TAG, WORKER_REPLICAS,
    ...); ports default to free ones. Removal runs even when the deploy, the
    wait or the body fails, and waits until the stack's networks are gone.
    Yields only once every published role answers HTTP (see wait_serving).
    Raises StackError when an image is missing, the stack does not converge
    or a role does not answer.
    """
    stack = new_stack(env, prefix=prefix)
    stack.compose_dir = compose_dir
    missing = missing_images(stack.env)
    if missing:
        raise StackError(
            f"images {', '.join(missing)} are missing: run deploy/build-images.sh "
            "(make test does)"
        )
    with deployed(stack):
        stack.wait(timeout)
        stack.wait_serving()
        yield stack
