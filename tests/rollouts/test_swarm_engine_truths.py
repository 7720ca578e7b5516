"""On a real swarm: what the engine assigns, remembers or
resolves on its own (ids on a re-deploy, a tag's build, a one-deep previous
spec, a task no node takes) never makes a rollout's outcome untrue.

One stack (one worker) and one database serve the module; the tests run in
file order and each checks the state it starts from. A test-only image
repository is built FROM the app image and removed at the end.
"""

import os
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack
from rollouts.models import RolloutState
from tests.rollouts.swarm_support import (
    latest_rollout,
    module_database,
    refused,
    run,
    running_images,
    service,
)

pytestmark = pytest.mark.swarm

IMAGE = os.environ.get("DOCKERCOINS_IMAGE", "dockercoins")
REPO = f"dc-engine-test-{secrets.token_hex(3)}"
UNPLACEABLE = "no suitable node (max replicas per node limit exceed)"


def docker_cli(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def test_repo(docker_client) -> Iterator[str]:
    try:
        docker_cli("tag", f"{IMAGE}:1.0", f"{REPO}:same")
        yield REPO
    finally:
        subprocess.run(
            ["docker", "rmi", "-f", f"{REPO}:same"], capture_output=True, timeout=60
        )


@pytest.fixture(scope="module")
def stack(test_repo, docker_client) -> Iterator[Stack]:
    with deployed_stack({"WORKER_REPLICAS": "1"}) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def history(stack, django_db_setup, django_db_blocker):
    with module_database(stack, django_db_blocker):
        yield


@pytest.fixture
def docker(history, docker_client):
    return docker_client


def container_images(docker_client, name: str) -> list[str]:
    """The image ids the service's running containers were created from."""
    found = []
    for task in docker_client.services.get(name).tasks(
        filters={"desired-state": "running"}
    ):
        if task["Status"]["State"] != "running":
            continue
        container = task["Status"]["ContainerStatus"]["ContainerID"]
        found.append(docker_client.api.inspect_container(container)["Image"])
    return found


def network_ids(docker_client, name: str) -> list[str]:
    spec = docker_client.services.get(name).attrs["Spec"]
    return [n["Target"] for n in spec["TaskTemplate"].get("Networks") or []]


def test_a_redeploy_is_not_drift_and_a_reapply_writes_the_new_ids(stack, docker):
    worker = service(stack, "worker")
    before = network_ids(docker, worker.name)
    stack.remove()  # `make down`: our database (the test's) is kept
    stack.deploy()
    stack.wait()
    assert network_ids(docker, worker.name) != before  # new ids, same names

    status = run("status")

    assert "drift" not in status, status
    run("reapply", "worker", "--wait")
    assert latest_rollout(service(stack, "worker")).state == RolloutState.COMPLETED
    assert network_ids(docker, worker.name) != before  # never a stale id


def test_the_same_tag_rebuilt_is_rolled_out_and_never_done_on_the_old_build(
    stack, docker
):
    worker = service(stack, "worker")
    run("apply", "worker", "--image", REPO, "--image-tag", "same", "--wait")
    old = container_images(docker, worker.name)
    docker_cli(
        "build", "-q", "-t", f"{REPO}:same", "-",
        stdin=f"FROM {IMAGE}:1.0\nENV REBUILT=1\n",
    )  # fmt: skip
    new = docker.api.inspect_image(f"{REPO}:same")["Id"]
    assert old == [docker.api.inspect_image(f"{IMAGE}:1.0")["Id"]] != [new]

    out = run("apply", "worker", "--image", REPO, "--image-tag", "same", "--wait")

    assert "(the tag was rebuilt): forcing an update (ForceUpdate)" in out
    assert "completed" in out
    assert container_images(docker, worker.name) == [new]


def test_a_rollback_after_an_outside_no_op_update_is_refused_with_the_undo(
    stack, docker
):
    worker = service(stack, "worker")
    run("apply", "worker", "--image", IMAGE, "--image-tag", "1.0", "--wait")
    run("apply", "worker", "--image-tag", "1.1", "--wait")
    docker_cli("service", "update", "--detach", worker.name)  # changes nothing

    message = refused("rollback", "worker", "--wait")

    assert f"rollback refused: {worker.name} runs {IMAGE}:1.1" in message
    assert "a rollback would change nothing" in message
    assert "`rollout undo worker` puts back revision " in message
    assert f"({IMAGE}:1.0)" in message
    assert running_images(docker, worker.name) == [f"{IMAGE}:1.1"]
    run("undo", "worker", "--wait")
    assert running_images(docker, worker.name) == [f"{IMAGE}:1.0"]


def test_a_task_the_scheduler_cannot_place_is_named_at_once(stack, docker):
    worker = service(stack, "worker")
    docker_cli(
        "service", "update", "--detach", "--replicas-max-per-node", "1", worker.name
    )
    wait_until(
        lambda: service(stack, "worker").live_spec["TaskTemplate"]
        .get("Placement", {}).get("MaxReplicas") == 1,
        timeout=30,
        message="max replicas per node 1",
    )  # fmt: skip
    run("adopt", "worker", "--cause", "one per node")

    message = refused(
        "apply", "worker", "--replicas", "3", "--progress-deadline", "20s", "--wait"
    )

    rollout = latest_rollout(worker)
    assert rollout.state == RolloutState.FAILED
    assert "progress deadline of 20s passed with 1 of 3 tasks running" in message
    assert "the scheduler cannot place 2 task(s): " in message
    assert UNPLACEABLE in message
    unplaced = rollout.events.filter(kind="unplaced").order_by("pk").first()
    assert unplaced is not None and UNPLACEABLE in unplaced.message
    named_after = (unplaced.at - rollout.started_at).total_seconds()
    assert named_after < 10, f"named after {named_after:.1f}s"
    status = run("status")
    assert f"{worker.name}: 2 task(s) cannot be placed on any node: " in status
    docker_cli(
        "service", "update", "--detach", "--replicas-max-per-node", "0", worker.name
    )
    run("apply", "worker", "--replicas", "1", "--wait")
