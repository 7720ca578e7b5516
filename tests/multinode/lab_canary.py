"""Where the tasks an analysis measurement compared ran on the lab: the
measurement as the stack's controller stored it, and the template's own query
asked again of the stack's Prometheus at that time, each series' `instance`
(a task's address, found through Swarm's DNS `tasks.worker`) mapped back to
its task's node."""

import json

from deploy.labs import LabStack
from rollouts.analysis.templates import TEMPLATES, query
from rollouts.spec.choices import AnalysisTemplate
from tests.rollouts.canary_support import INTERVAL, prometheus_vector

# Run in the controller (its database): the worker's latest apply's
# measurements, oldest first, as one JSON line.
_MEASUREMENTS = """
import json
from rollouts.models import Rollout
r = Rollout.objects.filter(service__name={service!r}, kind="apply").latest("pk")
print(json.dumps([
    {{"phase": m.phase, "at": m.at.timestamp(), "new_version": m.new_version,
      "old_version": m.old_version, "new_tasks": m.new_tasks,
      "old_tasks": m.old_tasks, "message": m.message}}
    for m in r.measurements.all()
]))
"""


def measurements(stack: LabStack) -> list[dict]:
    """The worker's latest apply's measurements, from the controller's database."""
    code = _MEASUREMENTS.format(service=stack.service("worker"))
    done = stack.manage("shell", "-c", code, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def nodes_measured(stack: LabStack, measurement: dict) -> dict[str, list[str]]:
    """{version: [node of each task]} whose hash rates `measurement` compared:
    the worker template's per-task query over the analysis window, at the
    measurement's time."""
    template = TEMPLATES[AnalysisTemplate.WORKER_HASH_RATE]
    vector = prometheus_vector(
        stack, query(template.per_task, INTERVAL), at=measurement["at"]
    )
    where = stack.nodes_by_address("worker")
    found: dict[str, list[str]] = {}
    for series in vector:
        version = series["metric"]["version"]
        address = series["metric"]["instance"].rsplit(":", 1)[0]
        node = where.get((address, version), f"no task {address} of {version}")
        found.setdefault(version, []).append(node)
    return {version: sorted(nodes) for version, nodes in found.items()}


def assert_compared_across_nodes(
    stack: LabStack, measurement: dict
) -> dict[str, list[str]]:
    """The one canary task of the new version on one node, measured against
    every old task, old ones on other nodes among them: {version: nodes}."""
    new, old = measurement["new_version"], measurement["old_version"]
    nodes = nodes_measured(stack, measurement)
    said = f"{measurement['phase']}: {measurement['message']}; tasks by node {nodes}"
    assert (measurement["new_tasks"], measurement["old_tasks"]) == (1, 3), said
    assert len(nodes.get(new, [])) == 1 and len(nodes.get(old, [])) == 3, said
    canary_node = nodes[new][0]
    assert canary_node.startswith("node-"), said
    assert all(n.startswith("node-") for n in nodes[old]), said
    assert set(nodes[old]) - {canary_node}, f"no old task on another node: {said}"
    return nodes
