"""The workshop on a real 3-node swarm: rng made global (one task per node),
the rate it buys with 10 workers, a rolling update across nodes, and a node
lost in the middle of a rollout. The tests run in this order on one stack."""

import json
import threading
import time
import urllib.request

import pytest

from deploy.labs import Lab, LabStack
from deploy.polling import wait_until

pytestmark = pytest.mark.multinode

NODES = 3
WORKERS = 10
# The model: one rng task serves ~10 hashes/s (0.1 s per request), so global
# rng on N nodes serves N x 10 once the workers spread over the rng tasks.
RATE_BOUND = 0.85 * NODES * 10
# Nodes that may be lost: node-0 keeps the controller, its database and Redis.
CANDIDATES = ("node-1", "node-2")
SINGLETONS = ("controller", "redis", "webui", "postgres")


def rollout(stack: LabStack, *args: str, timeout: float = 600) -> str:
    done = stack.manage("rollout", *args, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"rollout {' '.join(args)} failed:\n{output}"
    return output


def test_the_lab_has_three_ready_nodes_all_managers(lab: Lab):
    rows = lab.docker(
        "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"
    ).splitlines()
    assert sorted(r.split()[0] for r in rows) == ["node-0", "node-1", "node-2"]
    assert all(r.split()[1] == "Ready" for r in rows), rows
    assert sum("Leader" in r for r in rows) == 1
    assert sum("Reachable" in r for r in rows) == NODES - 1


def test_postgres_runs_on_the_labelled_node(lab_stack: LabStack):
    assert lab_stack.running_nodes("postgres") == ["node-0"]
    wait_until(
        lambda: lab_stack.json()["hashes"] > 0, timeout=90, message="mining to start"
    )


def test_rng_made_global_runs_one_task_per_node(lab_stack: LabStack):
    rollout(
        lab_stack, "apply", "rng", "--mode", "global", "--confirm-recreate", "--wait"
    )
    nodes = wait_until(
        lambda: (n := lab_stack.running_nodes("rng")) == ["node-0", "node-1", "node-2"]
        and n,
        timeout=120,
        message="one running rng task on each node",
    )
    assert nodes == ["node-0", "node-1", "node-2"]


def test_redeploying_the_stack_keeps_rng_global(lab_stack: LabStack):
    # What `make up` runs again at any point of the workshop: the engine
    # refuses a mode change ("service mode change is not allowed").
    lab_stack.deploy()
    mode = lab_stack.lab.docker(
        "service",
        "inspect",
        "--format",
        "{{if .Spec.Mode.Global}}global{{else}}replicated{{end}}",
        lab_stack.service("rng"),
    )
    assert mode.strip() == "global"
    lab_stack.wait(240)
    assert lab_stack.running_nodes("rng") == ["node-0", "node-1", "node-2"]


def test_ten_workers_mine_at_the_global_rate(lab: Lab, lab_stack: LabStack):
    # Through the product (its desired replicas), not behind its back: the
    # next `rollout apply` would otherwise send the old count again.
    rollout(lab_stack, "scale", "worker", str(WORKERS), "--wait")
    wait_until(
        lambda: len(lab_stack.running_nodes("worker")) == WORKERS,
        timeout=240,
        message=f"{WORKERS} running workers",
    )
    rates: list[float] = []

    def settled() -> bool:
        rates.append(round(lab_stack.rate(10), 1))
        return rates[-1] >= RATE_BOUND

    try:
        wait_until(settled, timeout=90, interval=0, message="the rate to settle")
    except AssertionError:
        pytest.fail(
            f"{WORKERS} workers with rng global on {NODES} nodes: rates {rates} "
            f"hashes/s, below {RATE_BOUND:g} (0.85 x {NODES} x 10)"
        )


def test_prometheus_scrapes_every_worker_and_rng_on_every_node(lab_stack: LabStack):
    # Prometheus runs on node-0 and finds the tasks through Swarm's DNS
    # (tasks.<service>), which answers for every node of the overlay network.
    def up_by_node() -> dict[str, set[str]] | None:
        url = lab_stack.url("prometheus", "/api/v1/targets?state=active")
        with urllib.request.urlopen(url, timeout=10) as response:
            targets = json.load(response)["data"]["activeTargets"]
        up: dict[str, set[str]] = {}
        for target in targets:
            if target["health"] == "up":
                job = target["labels"]["job"]
                up.setdefault(job, set()).add(target["labels"]["instance"])
        enough = (
            len(up.get("worker", ())) == WORKERS and len(up.get("rng", ())) == NODES
        )
        return up if enough else None

    up = wait_until(up_by_node, timeout=120, interval=2, message="every task scraped")
    assert up is not None and {"hasher", "webui", "controller"} <= set(up)
    assert lab_stack.running_nodes("prometheus") == ["node-0"]


def test_a_rolling_update_runs_across_nodes(lab: Lab, lab_stack: LabStack):
    # Fewer workers: the update is about rng, and the machine is small.
    rollout(lab_stack, "scale", "worker", "2", "--wait")
    output = rollout(lab_stack, "apply", "rng", "--image-tag", "1.1", "--wait")
    assert "completed" in output
    tasks = [t for t in lab_stack.tasks("rng") if t["desired"] == "running"]
    assert sorted(t["node"] for t in tasks) == ["node-0", "node-1", "node-2"]
    assert {t["image"].rsplit(":", 1)[1] for t in tasks} == {"1.1"}


def _keep_singletons_off(lab: Lab, stack: LabStack, node: str) -> None:
    """Losing the node must not take the controller (the one telling the
    story), its database or Redis: move them as an operator would drain."""
    # Unconditional: a singleton elsewhere now must not move here when it is
    # moved off another node later (the constraints add up).
    for short in SINGLETONS:
        lab.docker(
            "service",
            "update",
            "--detach",
            "--constraint-add",
            f"node.hostname!={node}",
            stack.service(short),
        )
    wait_until(
        lambda: all(
            stack.running_nodes(s) and node not in stack.running_nodes(s)
            for s in SINGLETONS
        ),
        timeout=180,
        message=f"the stack's singletons off {node}",
    )


def test_losing_a_node_mid_rollout_ends_it_with_the_truth(
    lab: Lab, lab_stack: LabStack
):
    # The updater takes slots in an order of its own, and a lost node stops
    # it for good: the case under test is the engine's own,
    # the last old task on the lost node. Workers stay off node-0 so that the
    # last old task is on a node the test may lose.
    for node in CANDIDATES:
        _keep_singletons_off(lab, lab_stack, node)
    # Not detached: the CLI returns once the engine's update has converged. A
    # scale written while it still runs leaves a task on the old spec that the
    # engine never replaces (and the controller rightly never calls done).
    lab.docker(
        "service",
        "update",
        "--quiet",
        "--constraint-add",
        "node.hostname!=node-0",
        lab_stack.service("worker"),
        timeout=240,
    )
    rollout(lab_stack, "scale", "worker", "4", "--wait")
    wait_until(
        lambda: "node-0" not in lab_stack.running_nodes("worker")
        and len(lab_stack.running_nodes("worker")) == 4,
        timeout=180,
        message="4 running workers, none on node-0",
    )
    started = time.monotonic()
    result: dict = {}

    def run() -> None:
        result["done"] = lab_stack.manage(
            "rollout",
            "apply",
            "worker",
            "--image-tag",
            "1.1",
            "--update-delay",
            "5s",
            "--wait",
            timeout=540,
        )

    thread = threading.Thread(target=run)
    thread.start()

    def node_of_the_last_old_task() -> str:
        if "done" in result:  # it ended before a node could be lost: say how
            done = result["done"]
            raise AssertionError(f"rollout ended early:\n{done.stdout}{done.stderr}")
        tasks = [t for t in lab_stack.tasks("worker") if t["desired"] == "running"]
        new = [
            t for t in tasks if t["image"].endswith(":1.1") and t["state"] == "running"
        ]
        old = [t for t in tasks if t["image"].endswith(":1.0")]
        last_old = len(old) == 1 and old[0]["node"] in CANDIDATES
        return old[0]["node"] if new and last_old else ""

    victim = wait_until(
        node_of_the_last_old_task,
        timeout=180,
        interval=1,
        message="one old task left, on a node the test may lose",
    )
    lab.sh("stop-node", victim, timeout=90)
    thread.join(timeout=560)
    assert "done" in result, "rollout apply --wait did not end"
    done = result["done"]
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"node {victim}" in output and "went down" in output, output
    assert "completed with a warning" in output, output
    # Well before the 10-minute progress deadline.
    assert time.monotonic() - started < 480
    status = rollout(lab_stack, "status")
    assert f"{victim}" in status and "down" in status, status


@pytest.mark.skip(
    reason="not yet passing on the lab (first run in CI failed; the rule is "
    "covered against the fake engine in tests/rollouts/test_node_loss_any_slot.py)"
)
def test_losing_a_node_that_holds_the_updaters_task_ends_it_at_once(
    lab: Lab, lab_stack: LabStack
):
    # The node lost holds the task the engine's updater is
    # waiting for, while other slots still run the old image. The updater never
    # moves on (it waits for that task to run, without a timeout): the rollout
    # must end at once with the node, the old slots and the way out, not at
    # its progress deadline. Runs after the test above: one candidate is down.
    listed = lab.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}")
    states = dict(line.split(" ", 1) for line in listed.splitlines())
    up = [n for n in CANDIDATES if states.get(n, "").lower() == "ready"]
    assert len(up) == 1, f"one candidate node left up: {up}"
    victim = up[0]
    # Old slots must stay on a node that stays up: let workers on node-0 again.
    lab.docker(
        "service",
        "update",
        "--quiet",
        "--constraint-rm",
        "node.hostname!=node-0",
        lab_stack.service("worker"),
        timeout=240,
    )
    rollout(lab_stack, "adopt", "worker", "--cause", "workers on node-0 again")
    rollout(lab_stack, "apply", "worker", "--image-tag", "1.0", "--wait")
    started = time.monotonic()
    result: dict = {}

    def run() -> None:
        result["done"] = lab_stack.manage(
            "rollout", "apply", "worker", "--image-tag", "1.1",
            "--update-delay", "5s", "--wait", timeout=540,
        )  # fmt: skip

    thread = threading.Thread(target=run)
    thread.start()

    def updater_on_the_victim() -> bool:
        if "done" in result:
            done = result["done"]
            raise AssertionError(f"rollout ended early:\n{done.stdout}{done.stderr}")
        tasks = [t for t in lab_stack.tasks("worker") if t["desired"] == "running"]
        starting = [
            t
            for t in tasks
            if t["node"] == victim
            and t["image"].endswith(":1.1")
            and t["state"] != "running"
        ]
        old_elsewhere = [
            t for t in tasks if t["node"] != victim and t["image"].endswith(":1.0")
        ]
        return bool(starting and old_elsewhere)

    wait_until(
        updater_on_the_victim,
        timeout=240,
        interval=0.2,
        message=f"a new task starting on {victim} while old ones run elsewhere",
    )
    lab.sh("stop-node", victim, timeout=90)
    thread.join(timeout=560)
    assert "done" in result, "rollout apply --wait did not end"
    done = result["done"]
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"the engine's update is stuck: node {victim} is down" in output, output
    assert "slot(s) still run the old spec" in output, output
    assert "Way out: `rollout undo worker`" in output, output
    assert time.monotonic() - started < 300  # not the 10-minute deadline
