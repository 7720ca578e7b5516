"""deploy/swarmops from the outside: the command line `make` runs, and the
one image list the stack and the lab share."""

import subprocess
import sys

import pytest

from deploy.swarmops.images import APP_TAGS, lab_images, stack_images
from deploy.swarmops.layout import REPO
from deploy.swarmops.stack import deploy_env


def swarmops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.swarmops", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_loads_into_a_lab_every_image_a_stack_deploys():
    env = {"DOCKERCOINS_IMAGE": "dc-x", "DOCKERCOINS_TAG": "1.1"}
    assert set(stack_images(env)) <= set(lab_images(env))
    assert [f"dc-x:{tag}" for tag in APP_TAGS] == lab_images(env)[: len(APP_TAGS)]
    assert "dc-x:bugged" in lab_images(env)


def test_it_rejects_an_unknown_command_with_usage_not_a_traceback():
    done = swarmops("launch")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.swarm
def test_it_says_in_one_line_when_no_controller_runs():
    done = swarmops("rollout", "dockercoins-test-nosuch", "status")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "ERROR: no running controller in stack dockercoins-test-nosuch (make up)"
    ]


@pytest.mark.swarm
def test_it_reports_a_stack_without_services_as_not_converged():
    done = swarmops("pending", "dockercoins-test-nosuch")
    assert (done.returncode, done.stdout.strip()) == (1, "(no services)")


def test_webhook_links_follow_the_webuis_published_port(monkeypatch):
    monkeypatch.delenv("WEBHOOK_PUBLIC_URL", raising=False)
    monkeypatch.delenv("WEBUI_PORT", raising=False)

    assert deploy_env("s", {"WEBUI_PORT": "18000"})["WEBHOOK_PUBLIC_URL"] == (
        "http://localhost:18000"
    )
    assert deploy_env("s", {})["WEBHOOK_PUBLIC_URL"] == "http://localhost:8000"
    chosen = {"WEBUI_PORT": "18000", "WEBHOOK_PUBLIC_URL": "https://ci.example"}
    assert deploy_env("s", chosen)["WEBHOOK_PUBLIC_URL"] == "https://ci.example"
