"""The fault tier: one real stack (PostgreSQL, Redis, 3 workers, the controller)
shared by every test here, and an operator who runs `manage.py rollout` in the
controller's container (as `make rollout` does) and reads the API as staff.

Each test leaves the stack converged, so the next one starts from a healthy
stack; recovery times are printed (`pytest -s`) and collected in
docs/faults.md.
"""

import base64
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack, docker

STAFF = "faults"
# Generous: the tier may share two cores with other test stacks.
HTTP_TIMEOUT = 30
RECOVERY: dict[str, float] = {}
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.swarm)
            item.add_marker(pytest.mark.faults)


def recovered(what: str, seconds: float) -> None:
    """Record a measured recovery time (printed at the end of the tier)."""
    RECOVERY[what] = round(seconds, 1)
    print(f"\nrecovery: {what}: {seconds:.1f}s")


@dataclass
class Operator:
    """Runs `manage.py rollout` where an operator does, reads the API as staff."""

    stack: Stack
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def container(self, short: str = "controller") -> str:
        """The id of the running container of a service (one task)."""
        out = docker(
            "ps",
            "-q",
            "--filter",
            "status=running",
            "--filter",
            f"label=com.docker.swarm.service.name={self.stack.service(short)}",
        )
        ids = out.split()
        if not ids:
            raise AssertionError(f"no running container of {short}")
        return ids[0]

    def logs(self, container: str) -> str:
        """A container's output and its log lines (Python logs to stderr)."""
        done = subprocess.run(
            ["docker", "logs", container],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=30,
        )
        return done.stdout

    def command(self, *args: str) -> list[str]:
        container = wait_until(
            self.container, timeout=120, message="a running controller"
        )
        group = docker("exec", container, "stat", "-c", "%g", "/var/run/docker.sock")
        return [
            "docker",
            "exec",
            "-u",
            f"10001:{group.strip()}",
            container,
            "python",
            "manage.py",
            *args,
        ]

    def run(self, *args: str, timeout: float = 300) -> tuple[int, str]:
        """`manage.py ARGS` in the controller's container: (exit code, output)."""
        done = subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout
        )
        return done.returncode, done.stdout + done.stderr

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`manage.py ARGS` in the background (e.g. `rollout apply --wait`)."""
        return subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        """`manage.py ARGS` in the webui's container (the admin's side, with
        more memory than the controller's); its output, or AssertionError."""
        flags = [f"-e{k}={v}" for k, v in (env or {}).items()]
        done = subprocess.run(
            ["docker", "exec", *flags, self.container("webui"), "python",
             "manage.py", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def make_staff(self) -> None:
        self.manage(
            "createsuperuser", "--noinput", "--username", STAFF, "--email",
            "faults@example.test", env={"DJANGO_SUPERUSER_PASSWORD": self.password},
        )  # fmt: skip

    def api(self, path: str) -> tuple[int, Any]:
        """GET /api/... as staff: (status, parsed JSON or the body as text)."""
        token = base64.b64encode(f"{STAFF}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            self.stack.url("webui", path), headers={"Authorization": f"Basic {token}"}
        )
        try:
            with _opener.open(request, timeout=HTTP_TIMEOUT) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def answer(self, path: str, status: int) -> Any:
        """The body of GET `path` when it answers `status`, else None."""
        got, body = self.api(path)
        return body if got == status else None

    def rollouts(self, short: str) -> list[dict[str, Any]]:
        """The service's rollouts, newest first (waits for the API to answer)."""

        def read() -> Any:
            status, body = self.api(f"/api/rollouts/rollouts/?service={short}")
            return [body] if status == 200 else None  # [] is an answer too

        found: list[dict[str, Any]] = wait_until(
            read, timeout=120, message=f"the rollouts of {short}"
        )[0]
        return found

    def rollout(self, pk: int) -> dict[str, Any]:
        status, body = self.api(f"/api/rollouts/rollouts/{pk}/")
        assert status == 200, body
        return body

    def final(self, pk: int, timeout: float = 240) -> dict[str, Any]:
        """The rollout once it is final (completed, failed, rolled back...)."""

        def done() -> Any:
            status, body = self.api(f"/api/rollouts/rollouts/{pk}/")
            running = ("queued", "applying", "watching")
            return body if status == 200 and body["state"] not in running else None

        return wait_until(done, timeout=timeout, interval=1, message=f"#{pk} to end")

    def running_images(self, short: str) -> list[str]:
        out = docker(
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Image}} {{.CurrentState}}",
            self.stack.service(short),
        )
        return sorted(
            line.split()[0] for line in out.splitlines() if " Running " in f" {line} "
        )

    def converged(self, timeout: float = 240) -> None:
        self.stack.wait(timeout)

    def scale(self, short: str, replicas: int) -> float:
        """`docker service scale -d`; returns the time.monotonic() it was sent."""
        sent = time.monotonic()
        docker(
            "service", "scale", "--detach", f"{self.stack.service(short)}={replicas}"
        )
        return sent


def seconds_to_event(rollout: dict[str, Any], starts: str, since: float) -> float:
    """Seconds from `since` (time.time()) to the rollout's last event whose
    message starts with `starts` (event times are the controller's clock, the
    host's clock here)."""
    for event in reversed(rollout["events"]):
        if event["message"].startswith(starts):
            at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
            return at.timestamp() - since
    raise AssertionError(f"no event {starts!r} in {rollout['events']}")


def other_tag(op: Operator) -> str:
    """The worker tag that is not running now (1.0 <-> 1.1)."""
    return "1.0" if op.running_images("worker")[0].endswith(":1.1") else "1.1"


def applied_once(op: Operator, rollout: dict[str, Any]) -> None:
    """Claimed once, written to the swarm once, its verdict recorded once."""
    events = [e["message"] for e in op.rollout(rollout["id"])["events"]]
    assert sum(m.startswith("applying (claimed by") for m in events) == 1, events
    assert sum(m.startswith("updated: ") for m in events) == 1, events
    assert sum(m.startswith("completed:") for m in events) == 1, events


def container_changed(op: Operator, before: str) -> bool:
    """True once another container than `before` runs the controller."""
    try:
        return op.container() != before
    except AssertionError:
        return False  # between the old task and the new one


@pytest.fixture(scope="session")
def faulty_stack(docker_client) -> Iterator[Stack]:
    """ONE stack for the whole tier: deploying one costs about a minute."""
    with deployed_stack({"WORKER_REPLICAS": "3"}) as stack:
        yield stack
    if RECOVERY:
        print("\nfault tier recovery times (s):")
        for what, seconds in RECOVERY.items():
            print(f"  {what}: {seconds}")


@pytest.fixture(scope="session")
def operator(faulty_stack: Stack) -> Operator:
    operator = Operator(faulty_stack)
    operator.make_staff()
    return operator


@pytest.fixture
def healthy(operator: Operator) -> Iterator[Operator]:
    """The stack converged before and after the test, whatever it broke."""
    operator.converged()
    yield operator
    operator.converged()
