"""The rollout actions (apply now, roll back, undo, scale, abort, promote, adopt,
re-apply) behind the admin.

Each one is a form plus a call into `rollouts.records.requests`, the same functions
`manage.py rollout` uses; the admin never writes rollout rows itself.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollouts.admin.forms import ApplyForm, CauseForm, ScaleForm, UndoForm
from rollouts.models import Rollout, RolloutState, Service
from rollouts.records import requests
from rollouts.records.requests import User


def _apply(service: Service, user: User, data: dict[str, Any]) -> Rollout:
    # "Apply now" re-queues the desired spec as it stands, e.g. after a paused
    # update or a change somebody made with the plain Docker CLI.
    return requests.service_change(
        service=service,
        user=user,
        change_cause=data["change_cause"],
        recreate_confirmed=data["recreate_confirmed"],
        resume_confirmed=data["resume_confirmed"],
        follow_live=False,  # "apply now" re-applies ours on purpose
        **service.desired_spec(),
    )


def _rollback(service: Service, user: User, data: dict[str, Any]) -> Rollout:
    return requests.service_rollback(
        service=service, user=user, change_cause=data["change_cause"]
    )


def _undo(service: Service, user: User, data: dict[str, Any]) -> Rollout:
    return requests.service_undo(
        service=service,
        user=user,
        to_revision=data["to_revision"],
        change_cause=data["change_cause"],
        recreate_confirmed=data["recreate_confirmed"],
    )


def _abort(service: Service, user: User, data: dict[str, Any]) -> Rollout:
    return requests.rollout_abort(
        service=service, user=user, cause=data["change_cause"]
    )


def _promote(service: Service, user: User, data: dict[str, Any]) -> Rollout:
    return requests.rollout_promote(
        service=service, user=user, cause=data["change_cause"]
    )


def _adopt(service: Service, user: User, data: dict[str, Any]) -> Rollout | None:
    requests.service_adopt(
        service=service, user=user, change_cause=data["change_cause"]
    )
    return None


def _reapply(service: Service, user: User, data: dict[str, Any]) -> Rollout:
    return requests.service_reapply(
        service=service, user=user, change_cause=data["change_cause"]
    )


def _scale(service: Service, user: User, data: dict[str, Any]) -> Rollout:
    return requests.service_scale(
        service=service,
        user=user,
        replicas=data["replicas"],
        change_cause=data["change_cause"],
        resume_confirmed=data["resume_confirmed"],
    )


@dataclass(frozen=True)
class Operation:
    slug: str  # URL segment: admin/rollouts/service/<id>/<slug>/
    action: str  # changelist action name
    menu: str  # its line in the changelist's action menu
    title: str
    explanation: str
    form_class: type[CauseForm]
    run: Callable[[Service, User, dict[str, Any]], Rollout | None]
    many: bool = True  # may run on several selected services at once
    needs_active: bool = False  # acts on the rollout in flight (abort)

    def form(
        self,
        data: Any = None,
        *,
        service: Service | None,
        initial: dict[str, Any] | None = None,
    ) -> CauseForm:
        return self.form_class(data, service=service, initial=initial)


OPERATIONS = {
    op.slug: op
    for op in (
        Operation(
            "apply",
            "apply_now",
            "Apply now (re-queue the desired spec)",
            "Apply now",
            "Queue a rollout of the current desired spec (image, replicas, "
            "policies) as it is saved.",
            ApplyForm,
            _apply,
        ),
        Operation(
            "rollback",
            "roll_back",
            "Roll back (engine rollback)",
            "Roll back",
            "Ask the engine to restore the spec the service had before its last "
            "update. The rollback policy (parallelism, delay, monitor…) applies.",
            CauseForm,
            _rollback,
        ),
        Operation(
            "undo",
            "undo_to_revision",
            "Undo to revision…",
            "Undo to revision",
            "Queue a rollout of an earlier revision's desired spec. Works even "
            "after an automatic rollback, when the engine forgot the previous spec.",
            UndoForm,
            _undo,
            many=False,
        ),
        Operation(
            "scale",
            "scale",
            "Scale…",
            "Scale",
            "Change the number of tasks of a replicated service.",
            ScaleForm,
            _scale,
        ),
        Operation(
            "abort",
            "abort_rollout",
            "Abort the rollout in flight…",
            "Abort rollout",
            "Stop the rollout in flight now, recorded with who and why. The "
            "engine's own update is not stopped: undo or roll back afterwards, "
            "which the abort allows at once.",
            CauseForm,
            _abort,
            needs_active=True,
        ),
        Operation(
            "promote",
            "promote_canary",
            "Promote the held canary…",
            "Promote canary",
            "Let a held canary's update go on now, whatever its analysis says, "
            "recorded with who and why (docs/analysis.md).",
            CauseForm,
            _promote,
            needs_active=True,
        ),
        Operation(
            "adopt",
            "adopt_live",
            "Adopt what runs (drift)…",
            "Adopt what runs",
            "Take the spec that runs now (changed outside, e.g. with the Docker "
            "CLI) as the desired spec and a new revision. Nothing is sent.",
            CauseForm,
            _adopt,
        ),
        Operation(
            "reapply",
            "reapply_ours",
            "Re-apply ours over drift…",
            "Re-apply ours",
            "Write our current revision's spec over a change made outside.",
            CauseForm,
            _reapply,
        ),
    )
}


def queued_message(rollout: Rollout | None) -> str:
    if rollout is None:
        return "Adopted what runs as a new revision; nothing was sent to the swarm."
    if rollout.promote_requested_at and not rollout.is_final:
        return (
            f"Rollout #{rollout.pk} of {rollout.service.name} will be promoted by "
            "its driver at its next step."
        )
    if rollout.state == RolloutState.ABORTED:
        return f"Rollout #{rollout.pk} of {rollout.service.name} {rollout.reason}"
    return (
        f"Rollout #{rollout.pk} queued for {rollout.service.name}; "
        "the controller applies it."
    )
