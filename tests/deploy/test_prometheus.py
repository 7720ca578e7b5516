"""The stack's Prometheus on a real swarm: it finds every task of every role
through Swarm's DNS and scrapes it, and the hashers' own counts let us count
the hashes a rolling update of the worker loses.

One stack (with Prometheus, unlike the other test stacks) serves the module.
"""

import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack, docker

pytestmark = pytest.mark.swarm

JOBS = {"rng", "hasher", "webui", "worker", "controller", "prometheus"}
WORKERS = 10
# No proxy for loopback, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def stack(docker_client) -> Iterator[Stack]:
    with deployed_stack(
        {"PROMETHEUS_REPLICAS": "1", "WORKER_REPLICAS": "2"}
    ) as deployed:
        yield deployed


def api(stack: Stack, path: str, **query: str) -> dict:
    url = stack.url("prometheus", path)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with _opener.open(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]


def healthy_targets(stack: Stack, seen: list) -> dict[str, int]:
    """{job: number of targets up}; every target's state appended to `seen`."""
    up: dict[str, int] = {}
    for target in api(stack, "/api/v1/targets", state="active")["activeTargets"]:
        job = target["labels"]["job"]
        seen.append((job, target["health"], target["lastError"]))
        if target["health"] == "up":
            up[job] = up.get(job, 0) + 1
    return up


def test_it_scrapes_every_task_of_every_role(stack: Stack):
    expected = {job: 2 if job == "worker" else 1 for job in JOBS}
    seen: list = []
    try:
        up = wait_until(
            lambda: (found := healthy_targets(stack, seen)) == expected and found,
            timeout=180,
            interval=2,
            message="every role's targets up in Prometheus",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen[-8:]}") from None
    assert up == expected


def test_it_has_the_hash_rate_by_version(stack: Stack):
    def rate_by_version() -> dict[str, float] | None:
        """{version: hashes/s}, once version 1.0 mines at full pace (right
        after the stack starts, the 20 s window still holds the idle start)."""
        query = "sum by (version) (rate(dockercoins_hashes_total[20s]))"
        result = api(stack, "/api/v1/query", query=query)["result"]
        found = {r["metric"]["version"]: float(r["value"][1]) for r in result}
        return found if found.get("1.0", 0) > 1 else None

    rates = wait_until(
        rate_by_version,
        timeout=90,
        interval=2,
        message="a hash rate over 1/s for version 1.0",
    )
    assert rates is not None and set(rates) == {"1.0"}
    # Two workers at the workshop's pace: about 3.3 hashes/s each.
    assert 1 < rates["1.0"] < 20


def test_its_ui_answers_on_its_published_port(stack: Stack):
    with _opener.open(stack.url("prometheus", "/classic/graph"), timeout=10) as page:
        assert page.status == 200
        assert b"Prometheus" in page.read()


def hashes_served(stack: Stack) -> int:
    """POSTs the hasher answered 200, over all its processes (one task: its
    port is published in host mode on this one node)."""
    with stack.get("hasher", "/metrics") as response:
        text = response.read().decode()
    pattern = re.compile(
        r'^dockercoins_http_request_duration_seconds_count\{(?=[^}]*method="POST")'
        r'(?=[^}]*status="200")[^}]*\} (\S+)$',
        re.M,
    )
    return int(sum(float(value) for value in pattern.findall(text)))


def worker_tasks_running(stack: Stack) -> int:
    out = docker(
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.CurrentState}}",
        stack.service("worker"),
    )
    return sum(1 for line in out.splitlines() if line.startswith("Running"))


def quiet_counts(stack: Stack) -> tuple[int, int]:
    """(hashes served by the hasher, hashes counted in Redis) with no worker
    running: every stopped worker has flushed, so the two are final."""
    docker("service", "scale", "--detach", f"{stack.service('worker')}=0")
    wait_until(
        lambda: worker_tasks_running(stack) == 0
        and not docker(
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.swarm.service.name={stack.service('worker')}",
        ).strip(),
        timeout=90,
        interval=1,
        message="every worker container gone",
    )
    # A loaded machine may drop one request: the counts are final by now.
    counted = wait_until(lambda: stack.json()["hashes"], timeout=30, message="/json")
    return hashes_served(stack), counted


def test_a_rolling_update_of_ten_workers_loses_no_hash(stack: Stack):
    served_before, counted_before = quiet_counts(stack)
    stack.scale("worker", WORKERS)
    wait_until(
        lambda: stack.json()["hashes"] > counted_before + 20,
        timeout=60,
        message="ten workers mining",
    )
    at_update = stack.json()["hashes"]
    image = os.environ.get("DOCKERCOINS_IMAGE", "dockercoins")
    docker(
        "service",
        "update",
        "--detach",
        "--update-parallelism",
        "2",
        "--image",
        f"{image}:1.1",
        stack.service("worker"),
        timeout=60,
    )
    stack.wait(240)  # every task replaced: the update is no longer rolling
    # Hashes were in flight while tasks were replaced (each stopped worker
    # flushes what it made): the count below covers an update under load.
    # How many depends on the machine's pace, so no fixed floor.
    wait_until(
        lambda: stack.json()["hashes"] > at_update,
        timeout=30,
        message="hashes made during the update",
    )
    served_after, counted_after = quiet_counts(stack)

    served = served_after - served_before
    counted = counted_after - counted_before
    print(f"hashes served by the hasher {served}, counted in Redis {counted}")
    assert served > 20  # the ten workers mined before the update began
    # Each stopping worker finishes the hash in flight and flushes it before
    # it exits (mining.worker.Worker.run): none is lost.
    assert counted == served
