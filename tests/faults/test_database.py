"""PostgreSQL restarts or goes away for a minute under a rollout in flight:
the rollout still ends with its true outcome, `apply --wait` exits with it,
the webui answers 503 meanwhile and recovers by itself, nothing is lost."""

import re
import time

from deploy.polling import wait_until
from deploy.stacks import docker
from tests.faults.conftest import (
    Operator,
    applied_once,
    container_changed,
    other_tag,
    recovered,
    seconds_to_event,
)

OUTAGE = 60.0  # seconds: "PostgreSQL stopped for a minute"


def test_apply_wait_rides_out_a_database_restart_and_exits_with_the_outcome(
    healthy: Operator,
):
    op = healthy
    tag = other_tag(op)
    revisions = len(op.api("/api/rollouts/services/worker/revisions/")[1])
    controller = op.container()
    wait = op.start(
        "rollout", "apply", "worker", "--image-tag", tag, "--update-delay", "10s",
        "--wait",
    )  # fmt: skip
    newest = wait_until(
        lambda: [r for r in op.rollouts("worker") if r["state"] == "watching"],
        timeout=180,
        message="the rollout to be watched",
    )[0]

    restarted = time.monotonic()
    docker("service", "update", "--force", "--detach", op.stack.service("postgres"))
    out, _ = wait.communicate(timeout=300)
    took = time.monotonic() - restarted
    print(out)

    assert wait.returncode == 0, out
    assert f"{op.stack.service('worker')}: completed in" in out
    assert "database unreachable (" in out, out  # it saw the restart...
    assert "manage.py migrate" not in out  # ...and did not call it a schema
    back = re.search(r"the database answers again \((\d+)s\)", out)
    assert back, out
    recovered("database restart, apply --wait reconnects", float(back.group(1)))
    recovered("database restart, apply --wait exits with the outcome", took)

    final = op.final(newest["id"])
    assert final["state"] == "completed", final
    assert "3 of 3 tasks running" in final["reason"], final
    assert f":{tag}" in final["reason"], final
    applied_once(op, final)
    assert op.running_images("worker") == [op.running_images("worker")[0]] * 3
    assert op.running_images("worker")[0].endswith(f":{tag}")
    after = len(op.api("/api/rollouts/services/worker/revisions/")[1])
    assert after == revisions + 1
    # The controller reconnected by itself: the same container, no restart.
    assert "the database answers again" in op.logs(controller)
    assert op.container() == controller


def test_a_database_outage_is_a_503_and_the_rollout_ends_truthfully(
    healthy: Operator,
):
    op = healthy
    tag = other_tag(op)
    code, out = op.run(
        "rollout", "apply", "worker", "--image-tag", tag, "--update-delay", "5s"
    )  # fmt: skip
    assert code == 0, out
    rollout = op.rollouts("worker")[0]
    controller = op.container()

    stopped = op.scale("postgres", 0)
    body = wait_until(
        lambda: op.answer("/api/rollouts/services/", 503),
        timeout=60,
        message="the API to say 503",
    )
    assert body == {
        "detail": "the database does not answer; try again in a few seconds"
    }
    # The miners' figures live in Redis: the dashboard goes on.
    assert op.stack.json()["hashes"] > 0
    code, out = op.run("rollout", "apply", "rng", "--replicas", "2")
    assert code == 1
    assert "database unreachable (" in out and "migrate" not in out, out

    # The controller cannot work: its heartbeat ages and its watch restarts it.
    wait_until(
        lambda: container_changed(op, controller),
        timeout=OUTAGE + 30,
        interval=1,
        message="the controller's watch to restart it",
    )
    recovered(
        "database down, the stuck controller restarted", time.monotonic() - stopped
    )
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))  # the outage

    started, started_at = op.scale("postgres", 1), time.time()
    wait_until(
        lambda: op.api("/api/rollouts/services/")[0] == 200,
        timeout=120,
        interval=0.5,
        message="the API to answer again",
    )
    recovered("database back, the API answers", time.monotonic() - started)
    final = op.final(rollout["id"], timeout=180)
    recovered("database back, the rollout's verdict", time.monotonic() - started)

    assert final["state"] == "completed", final
    assert "3 of 3 tasks running" in final["reason"], final
    assert op.running_images("worker")[0].endswith(f":{tag}")
    applied_once(op, final)
    events = [e["message"] for e in final["events"]]
    assert any(m.startswith("taken over by") for m in events), events
    taken_over = seconds_to_event(final, "taken over by", started_at)
    assert taken_over > 0  # by the new controller, once the database is back
    recovered("database back, the rollout taken over", taken_over)
    # The refused apply queued nothing.
    causes = [r["change_cause"] for r in op.rollouts("rng")]
    assert "rollout apply rng --replicas 2" not in causes
