"""Real DockerCoins stacks for tests and benchmarks: deployed under a unique
name on free loopback ports, waited for with deadlines, and always removed.
The Python face of deploy/stack.sh, shared by tests/ and bench/ (not a test
module: benchmarks must not import from tests/).

    with deployed_stack({"WORKER_REPLICAS": "2"}) as stack:
        stack.json()["hashes"]

Deploying, waiting and removing go through deploy/stack.sh, the same code
`make up` uses (compose files, the no-IPVS override, the removal that waits
until networks are gone), so tests exercise what users run.
"""

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STACK_SH = REPO / "deploy" / "stack.sh"
TEST_PREFIX = "dockercoins-test-"
CONVERGE_TIMEOUT = 240
REMOVE_TIMEOUT = 240
# Who owns each live test stack (deploy/lib.sh's prune spares live owners).
OWNERS_DIR = Path(os.environ.get("STACK_OWNERS_DIR", "/tmp/dockercoins-stacks"))
HTTP_TIMEOUT = 10
# No proxy for loopback, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(AssertionError):
    """A stack could not be deployed, converged or removed in time."""


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


def stack_sh(*args: str, env: dict[str, str] | None = None, timeout: float) -> str:
    """Run deploy/stack.sh; return its output, raise StackError on failure."""
    try:
        done = subprocess.run(
            [str(STACK_SH), *args],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"deploy/stack.sh {' '.join(args)}: no end in {timeout}s"
        ) from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise StackError(f"deploy/stack.sh {' '.join(args)} failed:\n{output}")
    return output


def docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise StackError(f"docker {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def missing_images(env: dict[str, str]) -> list[str]:
    # Like deploy/stack.sh, which sees the caller's environment under `env`.
    env = {**os.environ, **env}
    image = env.get("DOCKERCOINS_IMAGE", "dockercoins")
    tag = env.get("DOCKERCOINS_TAG", "1.0")
    wanted = {
        f"{image}:{tag}",
        f"{image}:{env.get('WORKER_TAG', tag)}",
        env.get("REDIS_IMAGE", "dockercoins-redis:1.0"),
        env.get("POSTGRES_IMAGE", "dockercoins-postgres:1.0"),
    }
    if env.get("PROMETHEUS_REPLICAS", "1") != "0":
        wanted.add(env.get("PROMETHEUS_IMAGE", "dockercoins-prometheus:1.0"))
    missing = []
    for ref in sorted(wanted):
        done = subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, timeout=30
        )
        if done.returncode != 0:
            missing.append(ref)
    return missing


@dataclass
class Stack:
    """A deployed stack; its HTTP roles are published on 127.0.0.1 ports."""

    name: str
    env: dict[str, str] = field(repr=False)

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
        return f"{self.name}_{short}"

    def url(self, short: str, path: str = "/") -> str:
        port = {"webui": self.webui_port, "rng": self.rng_port}
        port["hasher"] = self.hasher_port
        port["prometheus"] = self.prometheus_port
        return f"http://127.0.0.1:{port[short]}{path}"

    def get(self, short: str, path: str = "/", *, data: bytes | None = None):
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
        stack_sh("deploy", self.name, env=self.env, timeout=120)

    def wait(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Wait until every service runs all its tasks, healthy."""
        stack_sh(
            "wait", self.name, str(int(timeout)), env=self.env, timeout=timeout + 30
        )

    def pending(self) -> str:
        """The services not converged yet, one per line ("" when all are)."""
        try:
            stack_sh("pending", self.name, timeout=30)
        except StackError as exc:
            return str(exc).split("\n", 1)[1]
        return ""

    def scale(
        self, short: str, replicas: int, *, timeout: float = CONVERGE_TIMEOUT
    ) -> None:
        docker("service", "scale", "--detach", f"{self.service(short)}={replicas}")
        self.wait(timeout)

    def remove(self) -> None:
        """Remove the stack and its volumes; wait until nothing is left."""
        stack_sh("rm", self.name, "--volumes", timeout=REMOVE_TIMEOUT)


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
def deployed_stack(
    env: dict[str, str] | None = None,
    *,
    timeout: float = CONVERGE_TIMEOUT,
    prefix: str = TEST_PREFIX,
) -> Iterator[Stack]:
    """Deploy the stack, wait until it converged, yield it, always remove it.

    `env` sets the stack file's variables (DOCKERCOINS_TAG, WORKER_REPLICAS,
    ...); ports default to free ones. Removal runs even when the deploy, the
    wait or the body fails, and waits until the stack's networks are gone.
    """
    stack = new_stack(env, prefix=prefix)
    missing = missing_images(stack.env)
    if missing:
        raise StackError(
            f"images {', '.join(missing)} are missing: run deploy/build-images.sh "
            "(make test does)"
        )
    OWNERS_DIR.mkdir(parents=True, exist_ok=True)
    owner = OWNERS_DIR / stack.name
    owner.write_text(str(os.getpid()))
    with ExitStack() as cleanup:
        cleanup.callback(owner.unlink, missing_ok=True)
        cleanup.callback(stack.remove)
        stack.deploy()
        stack.wait(timeout)
        yield stack
