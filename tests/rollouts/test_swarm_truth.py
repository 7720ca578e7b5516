"""Issue 7 on a real swarm: a rollout's outcome is the truth about what the swarm
runs, also when someone else writes, tasks die late or exit 0, nothing can run,
or an operator aborts.

One stack (two workers) and one database serve the module, as in
test_swarm_workshop.py; the tests run in file order and each checks the state
it starts from. Two tiny images are built FROM dockercoins:1.0 under a
test-only name and removed at the end: one whose entrypoint is /bin/true, one
that runs the worker for 8 s and then exits 3. Neither has a health check, so
their tasks are running as soon as they start.
"""

import io
import re
import secrets
import subprocess
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack
from rollouts.models import Rollout, RolloutKind, RolloutState
from tests.rollouts.swarm_support import (
    latest_rollout,
    module_database,
    refused,
    run,
    running_images,
    service,
)

pytestmark = pytest.mark.swarm

REPO = f"dc-truth-test-{secrets.token_hex(3)}"
IMAGES = {
    "exits-clean": 'ENTRYPOINT ["/bin/true"]',
    "dies-late": (
        'ENTRYPOINT ["/bin/sh", "-c", '
        '"timeout 8 /app/deploy/entrypoint.sh \\"$@\\"; exit 3", "--"]'
    ),
}
TASK_ID = re.compile(r"\b[a-z0-9]{25}\b")


@pytest.fixture(scope="module")
def test_images(docker_client):
    built = []
    try:
        for tag, entrypoint in IMAGES.items():
            dockerfile = f"FROM dockercoins:1.0\nHEALTHCHECK NONE\n{entrypoint}\n"
            subprocess.run(
                ["docker", "build", "-q", "-t", f"{REPO}:{tag}", "-"],
                input=dockerfile.encode(),
                check=True,
                capture_output=True,
                timeout=120,
            )
            built.append(f"{REPO}:{tag}")
        yield REPO
    finally:
        if built:
            subprocess.run(
                ["docker", "rmi", "-f", *built], capture_output=True, timeout=60
            )


@pytest.fixture(scope="module")
def stack(test_images, docker_client) -> Iterator[Stack]:
    with deployed_stack({"WORKER_REPLICAS": "2"}) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def history(stack, django_db_setup, django_db_blocker):
    with module_database(stack, django_db_blocker):
        yield


@pytest.fixture
def docker(history, docker_client):
    return docker_client


def tasks(docker_client, name: str) -> list[dict]:
    return docker_client.services.get(name).tasks()


def workers_on(docker_client, name: str, image: str, count: int) -> None:
    wait_until(
        lambda: running_images(docker_client, name) == [image] * count,
        timeout=60,
        message=f"{count} tasks of {name} on {image}",
    )


def still_running(docker_client, name: str) -> list[dict]:
    """Tasks that run although told to stop."""
    return [
        t
        for t in tasks(docker_client, name)
        if t["Status"]["State"] == "running" and t["DesiredState"] != "running"
    ]


def test_a_scale_down_completes_only_once_the_extra_task_stopped(stack, docker):
    worker = service(stack, "worker")
    assert worker.live_running == 2

    run("scale", "worker", "1", "--wait")

    assert still_running(docker, worker.name) == []
    assert running_images(docker, worker.name) == ["dockercoins:1.0"]
    run("scale", "worker", "2", "--wait")
    assert running_images(docker, worker.name) == ["dockercoins:1.0"] * 2


def test_an_outside_image_change_during_a_rollout_supersedes_it(stack, docker):
    worker = service(stack, "worker")
    run("apply", "worker", "--image-tag", "1.1", "--update-delay", "10s")
    subprocess.run(
        ["docker", "service", "update", "--detach", "--image", "dockercoins:1.0"]
        + [worker.name],
        check=True,
        capture_output=True,
        timeout=60,
    )

    message = refused("apply", "worker", "--wait")

    rollout = latest_rollout(worker)
    assert rollout.state == RolloutState.SUPERSEDED
    assert "superseded by a change made outside" in message
    assert "image dockercoins:1.1 -> dockercoins:1.0" in message


def test_status_shows_an_outside_change_as_drift_until_adopted(stack, docker):
    worker = service(stack, "worker")
    assert worker.tag == "1.1"  # what we asked; 1.0 runs

    status = run("status")
    assert f"{worker.name}: drift" in status
    assert "  image: dockercoins:1.1 -> dockercoins:1.0" in status

    run("adopt", "worker", "--cause", "1.0 was put back by hand")
    worker.refresh_from_db()
    assert worker.tag == "1.0"
    assert f"{worker.name}: drift" not in run("status")


def test_a_change_carries_only_the_fields_the_operator_changed(stack, docker):
    worker = service(stack, "worker")
    subprocess.run(
        ["docker", "service", "scale", "--detach", f"{worker.name}=3"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    wait_until(
        lambda: len(running_images(docker, worker.name)) == 3,
        timeout=60,
        message="three workers",
    )

    assert "  replicas: 2 -> 3" in run("status")  # drift, seen before any change

    out = run("apply", "worker", "--update-parallelism", "2", "--wait")

    assert "replicas" not in out  # 3 stays: it was not part of the change
    rollout = latest_rollout(worker)
    assert rollout.state == RolloutState.COMPLETED
    assert rollout.revision.spec["replicas"] == 3
    assert rollout.revision.spec["update_parallelism"] == 2
    run("apply", "worker", "--replicas", "2", "--update-delay", "0s", "--wait")


def test_a_task_that_exits_0_is_a_failure_named_by_slot_image_and_exit_code(
    stack, docker
):
    worker = service(stack, "worker")
    assert running_images(docker, worker.name) == ["dockercoins:1.0"] * 2

    message = refused(
        "apply",
        "worker",
        "--image",
        REPO,
        "--image-tag",
        "exits-clean",
        "--update-failure-action",
        "pause",
        "--wait",
    )

    rollout = latest_rollout(worker)
    assert rollout.state == RolloutState.PAUSED
    assert message.startswith(f"{worker.name}: rollout #{rollout.pk} paused: ")
    assert "the engine paused the update" in message
    assert re.search(
        rf"{worker.name}\.\d \({REPO}:exits-clean\) complete, exit 0", message
    ), message
    assert not TASK_ID.search(message), "a raw task id in the reason"


def test_a_change_that_would_resume_the_paused_update_is_refused(stack, docker):
    worker = service(stack, "worker")
    assert worker.live_update_state == "paused"
    before = running_images(docker, worker.name)

    message = refused("scale", "worker", "3", "--wait")

    assert f"{worker.name} runs a paused failed update of {REPO}:exits-clean" in (
        message
    )
    assert running_images(docker, worker.name) == before
    # Undo puts back what last completed, at once.
    run("undo", "worker", "--wait")
    assert latest_rollout(worker).state == RolloutState.COMPLETED
    workers_on(docker, worker.name, "dockercoins:1.0", 2)


def test_a_task_that_dies_after_the_monitor_window_fails_and_rolls_back(stack, docker):
    worker = service(stack, "worker")

    message = refused(
        "apply",
        "worker",
        "--image",
        REPO,
        "--image-tag",
        "dies-late",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "2s",
        "--update-delay",
        "0s",
        "--stable-for",
        "20s",
        "--wait",
    )

    rollout = Rollout.objects.filter(service=worker, kind="apply").latest("pk")
    assert rollout.state == RolloutState.FAILED
    assert "new tasks ended during the rollout" in message
    assert re.search(
        rf"{worker.name}\.\d \({REPO}:dies-late\) failed, exit 3", message
    ), message
    follow_up = latest_rollout(worker)
    assert (follow_up.kind, follow_up.state) == (
        RolloutKind.ROLLBACK,
        RolloutState.COMPLETED,
    )
    workers_on(docker, worker.name, "dockercoins:1.0", 2)


def test_an_operator_aborts_a_rollout_in_flight_and_undoes_at_once(stack, docker):
    worker = service(stack, "worker")
    run(
        "apply",
        "worker",
        "--image",
        REPO,
        "--image-tag",
        "dies-late",
        "--update-failure-action",
        "pause",
        "--stable-for",
        "60s",
    )

    out = run("abort", "worker", "--cause", "it dies after 8 s")

    rollout = Rollout.objects.filter(service=worker).latest("pk")
    assert rollout.state == RolloutState.ABORTED
    assert "aborted by the command line: it dies after 8 s" in out
    run("undo", "worker", "--wait")
    assert latest_rollout(worker).state == RolloutState.COMPLETED
    workers_on(docker, worker.name, "dockercoins:1.0", 2)


def test_a_global_service_on_no_eligible_node_is_not_a_success(stack, docker):
    rng = service(stack, "rng")
    run("apply", "rng", "--mode", "global", "--confirm-recreate", "--wait")
    subprocess.run(
        ["docker", "service", "update", "--detach"]
        + ["--constraint-add", "node.labels.none==1", rng.name],
        check=True,
        capture_output=True,
        timeout=60,
    )
    wait_until(
        lambda: not running_images(docker, rng.name),
        timeout=60,
        message="no rng task left",
    )

    plan = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("rollout", "plan", "rng", stdout=plan, stderr=io.StringIO())
    assert "  placement constraints: - -> node.labels.none==1" in plan.getvalue()
    message = refused("apply", "rng", "--image-tag", "1.1", "--wait")

    assert "nothing runs: a global service on 0 eligible nodes of 1" in message
    assert "node.labels.none==1" in message
