"""The canary step, on plain Swarm (docs/analysis.md).

The engine has no pause for an update in progress, but its updater waits
`UpdateConfig.Delay` after each batch of `Parallelism` tasks. So a rollout
with a canary is written with Parallelism = the canary count and a Delay of a
day and a second (HOLD, a delay no declared policy can have, so a held spec is
known by its value): the engine replaces the canary tasks, then waits, and the rest of
the service keeps the old version. The analysis measures new tasks against
old ones meanwhile (rollouts.analysis). Promoting writes the service's own
Parallelism and Delay: a new spec version, so the engine's update supervisor
cancels the waiting updater and starts one with the normal policy, which
replaces the remaining old tasks (the canary tasks already run the new task
spec and are left alone). That write is ours: it becomes the rollout's
applied spec, so the watcher never takes it for an outside write. Failing
asks the engine for its rollback (PreviousSpec: the spec before our write).

The hold never outlives its rollout: a rollout that ends in any other way
while held (aborted, paused or failed by the engine, its progress deadline,
an outside write) is released by its driver (rollouts.control.driver:
rollout_release_hold, `release_plan` here): the engine's rollback when the
held spec is still ours, else the declared policy written over what runs.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from rollouts.analysis import rules
from rollouts.analysis.prometheus import PrometheusError, figures
from rollouts.analysis.templates import Template, template_for
from rollouts.engine.client import SwarmClient, SwarmError
from rollouts.engine.objects import SwarmService
from rollouts.models import AnalysisMeasurement, Rollout, Service
from rollouts.records.history import event, remember_applied
from rollouts.spec.choices import AnalysisMode
from rollouts.spec.drift import spec_differences
from rollouts.spec.fields import CANARY_HOLD, human_duration
from rollouts.spec.specs import (
    HOLD_FIELDS,
    apply_desired,
    desired_from_spec,
    is_held,
    policy_config,
    short_image,
    spec_image,
)

log = logging.getLogger("rollouts")

# RELEASED: the rollout ended while held and its hold was taken off.
HOLDING, PROMOTED, DRY_RUN, RELEASED = "holding", "promoted", "dry-run", "released"
# No canary, but an update in batches with a delay between them: measured
# while the engine waits, rolled back on a failure before the next batch.
BATCHES = "batches"
# Neither (one replica, a global service, no delay between batches), with a
# stability window long enough for a measurement: the tasks are measured
# against the service before the rollout while the window runs, and the
# rollout completes only once the analysis passed (PASSED).
WINDOW, PASSED = "window", "passed"
# seconds: the engine's wait after the canary batch, longer than any deadline
HOLD = CANARY_HOLD


def template(service: Service) -> Template | None:
    return template_for(service.analysis_template, service.short_name)


def plan(service: Service, desired: dict[str, Any], old_tag: str) -> str:
    """What the analysis does for a write of `desired` over a service running
    `old_tag`: HOLDING (a canary step), BATCHES (measured between the
    engine's batches), WINDOW (measured during the stability window, which
    covers the warm-up and one interval), DRY_RUN, or "" (the update runs
    through unjudged: nowhere to measure before it is done)."""
    if template(service) is None or desired.get("tag") == old_tag:
        return ""
    if service.analysis_mode == AnalysisMode.DRY_RUN:
        return DRY_RUN
    replicas = desired.get("replicas") or 0
    replicated = desired.get("mode") == "replicated"
    if replicated and 0 < service.canary < replicas:
        return HOLDING
    parallelism = desired.get("update_parallelism") or replicas
    if (
        replicated
        and service.canary == 0
        and desired.get("update_delay")
        and parallelism < replicas
    ):
        return BATCHES
    stable_for = desired.get("stable_for", service.stable_for)
    if stable_for is None:  # the default window is the update monitor
        stable_for = desired.get("update_monitor", service.update_monitor)
    if (stable_for or 0) >= window_needs(service):
        return WINDOW
    return ""


def window_needs(service: Service) -> float:
    """Seconds of stability window that hold a measurement: the warm-up after
    the newest task started, and one analysis interval."""
    return WARM_UP + service.analysis_interval


def held(desired: dict[str, Any], canary: int) -> dict[str, Any]:
    """`desired` with the update policy that holds after the canary batch."""
    return {**desired, "update_parallelism": canary, "update_delay": HOLD}


PROMOTE, ROLL_BACK = "promote", "roll back"
# seconds after the service's newest task started running before a window
# may begin: the stack's Prometheus finds a new task within its DNS refresh
# (5 s) and scrapes it within its scrape interval (5 s; deploy/prometheus.yml),
# and a window that began before the task mined, or before its first scrape,
# measured its start-up, not its pace (a healthy 1.1 canary once read -39 %).
WARM_UP = 10.0


def step(rollout: Rollout, client: SwarmClient, now: datetime) -> tuple[str, str]:
    """One look of the canary step: (PROMOTE, why), (ROLL_BACK, reason) for
    the driver to carry out, or ("", "") to look again.

    Measures once per analysis interval and records it; promotes when an
    operator asked to or the run succeeded; says so when it holds on
    inconclusive results.
    """
    service = rollout.service
    chosen = template(service)
    measured = (HOLDING, DRY_RUN, BATCHES, WINDOW)
    if chosen is None or rollout.canary_state not in measured:
        return "", ""
    if rollout.canary_state in (HOLDING, WINDOW) and rollout.promote_requested_at:
        who = getattr(rollout.promote_requested_by, "username", "the command line")
        return PROMOTE, f"promoted by {who}: {rollout.promote_cause}"
    interval = service.analysis_interval
    last = rollout.measurements.order_by("-at").first()
    # Not due yet, whatever the tasks do: no need to ask the engine.
    earliest = last.at if last else rollout.started_at or now
    if (now - earliest).total_seconds() < interval + (0 if last else WARM_UP):
        return "", ""
    warm = _warm_since(rollout, client, now)
    if warm is None:
        return "", ""  # no new task runs yet: nothing to measure
    # Each window covers only time when every task ran warm, new and old:
    # the interval since the last measurement, or since the newest task
    # started plus WARM_UP, whichever began later.
    since = max(last.at, warm) if last else warm
    if (now - since).total_seconds() < interval:
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
    if rollout.canary_state == BATCHES:
        return "", ""  # nothing held: the engine's next batch goes on
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


def _warm_since(
    rollout: Rollout, client: SwarmClient, now: datetime
) -> datetime | None:
    """When the service's tasks were last all warm (our clock): WARM_UP after
    the newest running task started; None while no task of the new version
    runs. Task times are the engine's; its clock is read to convert them."""
    if rollout.revision is None:
        return None
    tag = f":{rollout.revision.spec.get('tag', '')}"
    svc = client.inspect(rollout.service.name)
    running = [t for t in client.tasks(svc.id) if t.running and t.timestamp]
    if not any(t.image.split("@")[0].endswith(tag) for t in running):
        return None
    engine_now = client.engine_time()
    newest = max(t.timestamp for t in running if t.timestamp)
    return now - (engine_now - newest) + timedelta(seconds=WARM_UP)


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


def window_overdue(rollout: Rollout, now: datetime) -> str:
    """Why the stability window's analysis ends at the progress deadline (the
    tasks all run the new version, and it never concluded), or "" before it."""
    service = rollout.service
    started = rollout.started_at or rollout.requested_at
    if (now - started).total_seconds() <= service.progress_deadline:
        return ""
    last = rollout.measurements.order_by("-at").first()
    said = f" ({last.phase.lower()}: {last.message})" if last else " (no measurement)"
    return (
        f"progress deadline of {human_duration(service.progress_deadline)} passed "
        f"with the analysis of the stability window undecided{said}"
    )


def window_passed(rollout: Rollout, why: str) -> None:
    """The stability window's analysis passed (or an operator promoted it):
    the verdict may complete the rollout at its next look."""
    Rollout.objects.filter(pk=rollout.pk).update(canary_state=PASSED)
    rollout.canary_state = PASSED
    event(rollout, "state", f"analysis done: {why}")


# --- the end of a hold ----------------------------------------------------------

ROLL_BACK_CANARY, DECLARE_POLICY, NOTHING_HELD = "roll back", "declare", ""


def release_plan(rollout: Rollout, live: SwarmService) -> str:
    """How to take the hold off a rollout that ended while held, from the
    service as the engine has it now:

    - NOTHING_HELD: the live spec carries no hold (the engine's rollback put
      the spec before ours back, or someone wrote a policy of their own);
    - ROLL_BACK_CANARY: the held spec is still ours and the engine's previous
      spec is the one before it: the canary never went through, so the
      engine's rollback puts the old version and its policy back (what Argo
      Rollouts does on an abort);
    - DECLARE_POLICY: someone wrote over our held spec and kept the hold (the
      Docker CLI keeps a service's UpdateConfig), or the engine's previous
      spec is no longer the one before ours: the declared parallelism and
      delay are written over what runs, which is otherwise left as it is.
    """
    if not is_held(live.spec):
        return NOTHING_HELD
    previous = live.previous_spec
    if rollout.applied_spec:
        ours = not spec_differences(rollout.applied_spec, live.meant_spec)
    else:  # read back failed at the write: judged by the image alone
        wrote = rollout.revision.spec if rollout.revision else {}
        ours = short_image(spec_image(live.spec)) == (
            f"{wrote.get('image')}:{wrote.get('tag')}"
        )
    if ours and previous and not is_held(previous):
        return ROLL_BACK_CANARY
    return DECLARE_POLICY


def declared_policy(service: Service) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The change that takes the hold off whatever runs: the service's
    declared update parallelism and delay, every other field as it is."""
    declared = service.desired_spec()

    def change(spec: dict[str, Any]) -> dict[str, Any]:
        policy = desired_from_spec(spec)
        policy.update({f: declared[f] for f in HOLD_FIELDS})
        return {**spec, "UpdateConfig": policy_config(policy, "update")}

    return change


def declared_words(service: Service) -> str:
    """ "update parallelism 1, delay 0s": the policy a release puts back."""
    return (
        f"update parallelism {service.update_parallelism}, "
        f"delay {human_duration(service.update_delay)}"
    )


def released(rollout: Rollout, said: str) -> None:
    """Record that the hold is off: never released twice."""
    Rollout.objects.filter(pk=rollout.pk).update(
        canary_state=RELEASED, lease_until=None
    )
    rollout.canary_state = RELEASED
    if said:
        event(rollout, "analysis", said)
