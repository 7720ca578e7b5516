"""The controller killed (SIGKILL) mid-rollout: Swarm starts a new one, which
takes the orphaned rollout over once its lease runs out and ends it with its
true outcome; a rollout queued meanwhile (from the admin) is applied once."""

import time

from deploy.stacks import docker
from tests.faults.conftest import (
    Operator,
    applied_once,
    container_changed,
    other_tag,
    recovered,
    seconds_to_event,
)

QUEUE_CHANGE = (
    "from rollouts.records import requests, selectors; "
    "requests.service_change(service=selectors.service_get(name='hasher'), "
    "user=None, change_cause='queued while the controller was dead', "
    "carry=['update_delay'], update_delay=2.0)"
)


def test_a_killed_controllers_rollout_is_taken_over_and_ends_truthfully(
    healthy: Operator,
):
    op = healthy
    tag = other_tag(op)
    code, out = op.run(
        "rollout", "apply", "worker", "--image-tag", tag, "--update-delay", "5s"
    )  # fmt: skip
    assert code == 0, out
    rollout = op.rollouts("worker")[0]
    assert rollout["state"] == "watching", rollout
    controller = op.container()

    killed, killed_at = time.monotonic(), time.time()
    docker("kill", "--signal", "KILL", controller)
    # Queued as the admin queues it, while no controller runs.
    op.manage("shell", "-c", QUEUE_CHANGE)

    final = op.final(rollout["id"], timeout=180)
    recovered("controller SIGKILL, the rollout's verdict", time.monotonic() - killed)
    assert final["state"] == "completed", final
    assert "3 of 3 tasks running" in final["reason"] and f":{tag}" in final["reason"]
    events = [e["message"] for e in final["events"]]
    assert any(m.startswith("taken over by") for m in events), events
    applied_once(op, final)
    assert container_changed(op, controller)
    taken_over = seconds_to_event(final, "taken over by", killed_at)
    assert taken_over > 0  # by the new controller, after the kill
    recovered("controller SIGKILL, the rollout taken over", taken_over)

    queued = op.rollouts("hasher")[0]
    assert queued["change_cause"] == "queued while the controller was dead"
    changed = op.final(queued["id"], timeout=120)
    recovered(
        "controller SIGKILL, the queued rollout applied", time.monotonic() - killed
    )
    assert changed["state"] == "completed", changed
    events = [e["message"] for e in changed["events"]]
    assert sum(m.startswith("applying (claimed by") for m in events) == 1, events
    assert sum(m.startswith("updated: ") for m in events) == 1, events
