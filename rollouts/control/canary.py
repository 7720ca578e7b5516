"""The canary step, on plain Swarm (docs/analysis.md).

The engine has no pause for an update in progress, but its updater waits
`UpdateConfig.Delay` after each batch of `Parallelism` tasks. So a rollout
with a canary is written with Parallelism = the canary count and a Delay of a
day (HOLD): the engine replaces the canary tasks, then waits, and the rest of
the service keeps the old version. The analysis measures new tasks against
old ones meanwhile (rollouts.analysis). Promoting writes the service's own
Parallelism and Delay: a new spec version, so the engine's update supervisor
cancels the waiting updater and starts one with the normal policy, which
replaces the remaining old tasks (the canary tasks already run the new task
spec and are left alone). That write is ours: it becomes the rollout's
applied spec, so the watcher never takes it for an outside write. Failing
asks the engine for its rollback (PreviousSpec: the spec before our write).
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from rollouts.analysis import rules
from rollouts.analysis.prometheus import PrometheusError, figures
from rollouts.analysis.templates import Template, template_for
from rollouts.engine.client import SwarmClient, SwarmError
from rollouts.models import AnalysisMeasurement, Rollout, Service
from rollouts.records.history import event, remember_applied
from rollouts.spec.choices import AnalysisMode
from rollouts.spec.fields import MAX_DURATION
from rollouts.spec.specs import apply_desired

log = logging.getLogger("rollouts")

HOLDING, PROMOTED, DRY_RUN = "holding", "promoted", "dry-run"
# seconds: the engine's wait after the canary batch, longer than any deadline
HOLD = MAX_DURATION


def template(service: Service) -> Template | None:
    return template_for(service.analysis_template, service.short_name)


def plan(service: Service, desired: dict[str, Any], old_tag: str) -> str:
    """What the canary step does for a write of `desired` over a service
    running `old_tag`: HOLDING, DRY_RUN or "" (the update runs through)."""
    if template(service) is None or desired.get("tag") == old_tag:
        return ""
    if service.analysis_mode == AnalysisMode.DRY_RUN:
        return DRY_RUN
    replicas = desired.get("replicas") or 0
    if desired.get("mode") != "replicated" or not 0 < service.canary < replicas:
        return ""
    return HOLDING


def held(desired: dict[str, Any], canary: int) -> dict[str, Any]:
    """`desired` with the update policy that holds after the canary batch."""
    return {**desired, "update_parallelism": canary, "update_delay": HOLD}


PROMOTE, ROLL_BACK = "promote", "roll back"


def step(rollout: Rollout, client: SwarmClient, now: datetime) -> tuple[str, str]:
    """One look of the canary step: (PROMOTE, why), (ROLL_BACK, reason) for
    the driver to carry out, or ("", "") to look again.

    Measures once per analysis interval and records it; promotes when an
    operator asked to or the run succeeded; says so when it holds on
    inconclusive results.
    """
    service = rollout.service
    chosen = template(service)
    if chosen is None or rollout.canary_state not in (HOLDING, DRY_RUN):
        return "", ""
    if rollout.canary_state == HOLDING and rollout.promote_requested_at:
        who = getattr(rollout.promote_requested_by, "username", "the command line")
        return PROMOTE, f"promoted by {who}: {rollout.promote_cause}"
    last = rollout.measurements.order_by("-at").first()
    since = last.at if last else rollout.applied_at or rollout.started_at or now
    if (now - since).total_seconds() < service.analysis_interval:
        return "", ""
    measurement = measure(rollout, chosen)
    AnalysisMeasurement.objects.create(
        rollout=rollout,
        template=chosen.name,
        phase=measurement.phase,
        value=measurement.value,
        baseline=measurement.baseline,
        limit=measurement.limit,
        new_version=(rollout.revision.spec.get("tag", "") if rollout.revision else ""),
        old_version=rollout.baseline_version,
        new_tasks=measurement.new_tasks,
        old_tasks=measurement.old_tasks,
        dry_run=rollout.canary_state == DRY_RUN,
        message=measurement.message,
    )
    event(rollout, "analysis", f"{measurement.phase}: {measurement.message}")
    phases = list(rollout.measurements.values_list("phase", flat=True))
    run = rules.run_phase(
        phases,
        count=service.analysis_count,
        failure_limit=service.analysis_failure_limit,
        inconclusive_limit=service.analysis_inconclusive_limit,
    )
    if rollout.canary_state == DRY_RUN:
        return "", ""
    if run == rules.FAILED:
        slots = _slots(rollout, client)
        return ROLL_BACK, f"analysis failed: {measurement.message}{slots}"
    if run == rules.SUCCESSFUL:
        return PROMOTE, f"analysis passed: {measurement.message}"
    if measurement.phase in (rules.INCONCLUSIVE, rules.ERROR):
        limit = " (inconclusive limit reached)" if run == rules.INCONCLUSIVE else ""
        event(
            rollout,
            "analysis",
            f"holding{limit}: the analysis is inconclusive ({measurement.message}); "
            "`rollout promote` or `rollout abort` decides",
        )
    return "", ""


def measure(rollout: Rollout, chosen: Template) -> rules.Measurement:
    """One measurement: the new version's tasks against the old version's over
    the same window, or against the service before the rollout when no old
    task is left."""
    service = rollout.service
    new_tag = rollout.revision.spec.get("tag", "") if rollout.revision else ""
    window = service.analysis_interval
    try:
        found = figures(chosen, window)
        old = found.get(rollout.baseline_version)
        if old is None and rollout.applied_at is not None:
            before = figures(chosen, window, at=rollout.applied_at.timestamp())
            old = before.get(rollout.baseline_version)
    except PrometheusError as error:
        return rules.error(f"no measurement: {error}")
    return rules.measure(
        chosen,
        found.get(new_tag),
        old,
        threshold=service.analysis_threshold,
        min_samples=service.analysis_min_samples,
        image=service.image,
    )


def _slots(rollout: Rollout, client: SwarmClient) -> str:
    """ " in slot(s) 3, 4": the slots running the new version, for the reason."""
    if rollout.revision is None:
        return ""
    tag = f":{rollout.revision.spec.get('tag', '')}"
    try:
        tasks = client.tasks(client.inspect(rollout.service.name).id)
    except SwarmError:  # the reason is worth giving without its slots
        return ""
    slots = sorted(
        str(task.slot)
        for task in tasks
        if task.should_run and task.image.split("@")[0].endswith(tag)
    )
    return f" in slot(s) {', '.join(slots)}" if slots else ""


def normal_policy(rollout: Rollout) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The change the promotion writes: the service's own update policy over
    the hold, the image already written kept as it is."""
    desired = {
        **rollout.service.desired_spec(),
        **(rollout.revision.spec if rollout.revision else {}),
    }

    def normal(spec: dict[str, Any]) -> dict[str, Any]:
        image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        return apply_desired(spec, desired, image)

    return normal


def promoted(rollout: Rollout, written: dict[str, Any], why: str) -> None:
    """Record the promotion write: the spec read back becomes the rollout's
    applied spec (ours, never an outside write)."""
    Rollout.objects.filter(pk=rollout.pk).update(
        canary_state=PROMOTED, applied_spec=written
    )
    rollout.canary_state, rollout.applied_spec = PROMOTED, written
    remember_applied(rollout.service, written)
    event(rollout, "state", f"promoted at {timezone.now():%H:%M:%S}: {why}")
