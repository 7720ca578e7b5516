"""Rollouts on a real stack without the engine's health check on the app roles:
a new worker counts as running at once, and the seed's `bugged` image is still
caught within the monitor window and rolled back. `manage.py rollout` runs as
a subprocess, with a database of its own, exactly as an operator runs it."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from deploy.polling import wait_until
from deploy.stacks import REPO, Stack, deployed_stack, docker

pytestmark = pytest.mark.swarm

IMAGE = os.environ.get("DOCKERCOINS_IMAGE", "dockercoins")


@pytest.fixture(scope="module")
def stack(docker_client) -> Iterator[Stack]:
    with deployed_stack({"WORKER_REPLICAS": "2"}) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def rollout(stack, tmp_path_factory):
    """`manage.py rollout ARGS` against the stack: (exit code, output)."""
    env = {
        **os.environ,
        "DATABASE_PATH": str(tmp_path_factory.mktemp("db") / "db.sqlite3"),
        "SECRET_KEY": "test-only-not-secret-" + "x" * 40,
        "STACK_NAME": stack.name,
    }

    def run(*args: str) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return done.returncode, done.stdout + done.stderr

    code, out = run("migrate", "--noinput")
    assert code == 0, out
    return run


def task_images(stack: Stack, short: str) -> list[str]:
    out = docker(
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Image}} {{.CurrentState}}",
        stack.service(short),
    )
    return sorted(
        line.split()[0] for line in out.splitlines() if " Running " in f" {line} "
    )


def test_app_roles_run_without_an_engine_health_check(stack):
    for short in ("rng", "hasher", "webui", "worker", "controller"):
        spec = json.loads(
            docker(
                "service",
                "inspect",
                "--format",
                "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}",
                stack.service(short),
            )
        )
        assert spec["Test"] == ["NONE"], short


def test_the_seeds_bugged_image_is_still_rolled_back_and_reported(stack, rollout):
    code, out = rollout(
        "rollout",
        "apply",
        "worker",
        "--update-failure-action",
        "rollback",
        "--update-max-failure-ratio",
        "0.2",
        "--update-monitor",
        "20s",
        "--wait",
    )
    assert code == 0, out

    code, out = rollout("rollout", "apply", "worker", "--image-tag", "bugged", "--wait")

    assert code == 1, out
    assert "rolled back" in out and "non-zero exit" in out
    wait_until(
        lambda: task_images(stack, "worker") == [f"{IMAGE}:1.0"] * 2,
        timeout=60,
        message="both workers back on 1.0",
    )


def test_a_good_update_completes_on_every_task(stack, rollout):
    code, out = rollout("rollout", "apply", "worker", "--image-tag", "1.1", "--wait")

    assert code == 0, out
    assert task_images(stack, "worker") == [f"{IMAGE}:1.1"] * 2
