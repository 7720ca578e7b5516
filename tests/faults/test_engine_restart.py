"""The Docker engine restarted mid-rollout: every container of the node stops
with it (no live-restore), Swarm starts them again, the new controller takes
the rollout over and ends it with its true outcome.

This restarts the machine's dockerd, which every stack on it shares, so it
runs alone: marked `engine_restart`, it is skipped unless FAULTS_ENGINE_RESTART=1,
and always under a pytest-xdist worker (something else runs beside it there).
`make test` runs it in a second, serial phase once everything else is done:
`FAULTS_ENGINE_RESTART=1 pytest -p no:xdist -m engine_restart`.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

from deploy.polling import wait_until
from tests.faults.conftest import (
    Operator,
    applied_once,
    other_tag,
    recovered,
)

pytestmark = [
    pytest.mark.engine_restart,
    pytest.mark.skipif(
        os.environ.get("FAULTS_ENGINE_RESTART") != "1",
        reason="restarts the shared dockerd: runs only with FAULTS_ENGINE_RESTART=1 "
        "(make test's second phase)",
    ),
    pytest.mark.skipif(
        bool(os.environ.get("PYTEST_XDIST_WORKER")),
        reason="restarts the shared dockerd: never beside other tests (run it "
        "with -p no:xdist -m engine_restart)",
    ),
]


def engine_answers() -> bool:
    done = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.returncode == 0 and done.stdout.strip() == "active"


def host_engine_pid() -> int:
    """The machine's own dockerd: the one in its default pid file. Never
    `pidof dockerd`: a lab's engines (deploy/lab.sh) are dockerd processes too."""
    with open("/var/run/docker.pid") as pidfile:
        pid = int(pidfile.read().strip())
    with open(f"/proc/{pid}/comm") as comm:
        assert comm.read().strip() == "dockerd", f"pid {pid} is not dockerd"
    return pid


def restart_engine() -> None:
    """Restart dockerd as it was started: systemd's unit, or the same command
    line again (the README's `setsid dockerd ...`)."""
    if (
        shutil.which("systemctl")
        and subprocess.run(
            ["systemctl", "is-active", "--quiet", "docker"], check=False
        ).returncode
        == 0
    ):
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=120)
        return
    pid = host_engine_pid()
    with open(f"/proc/{pid}/cmdline", "rb") as raw:
        command = [part.decode() for part in raw.read().split(b"\0") if part]
    os.kill(pid, signal.SIGTERM)
    wait_until(
        lambda: not os.path.exists(f"/proc/{pid}"),
        timeout=60,
        message="dockerd to stop",
    )
    with open("/var/log/dockerd.log", "ab") as log:
        subprocess.Popen(
            command,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def test_an_engine_restart_mid_rollout_only_delays_the_verdict(healthy: Operator):
    op = healthy
    tag = other_tag(op)
    code, out = op.run(
        "rollout", "apply", "worker", "--image-tag", tag, "--update-delay", "5s"
    )  # fmt: skip
    assert code == 0, out
    rollout = op.rollouts("worker")[0]

    restarted = time.monotonic()
    restart_engine()
    wait_until(engine_answers, timeout=120, interval=1, message="the engine")
    recovered("engine restart, the engine answers", time.monotonic() - restarted)
    final = op.final(rollout["id"], timeout=300)
    recovered("engine restart, the rollout's verdict", time.monotonic() - restarted)

    for event in final["events"]:  # pytest -s: what the restart looked like
        print(f"  {event['at']} {event['message']}")
    assert final["state"] == "completed", final
    assert "3 of 3 tasks running" in final["reason"] and f":{tag}" in final["reason"]
    applied_once(op, final)
