"""The four rollout actions (apply now, roll back, undo, scale) behind the admin.

Each one is a form plus a call into `rollouts.services`, the same functions
`manage.py rollout` uses; the admin never writes rollout rows itself.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms

from rollouts import services
from rollouts.forms import ApplyForm, CauseForm, ScaleForm, UndoForm
from rollouts.models import Rollout, Service


def _apply(service: Service, user, data: dict) -> Rollout:
    # "Apply now" re-queues the desired spec as it stands, e.g. after a paused
    # update or a change somebody made with the plain Docker CLI.
    return services.service_change(
        service=service,
        user=user,
        change_cause=data["change_cause"],
        recreate_confirmed=data["recreate_confirmed"],
        follow_live=False,  # truth hook: "apply now" re-applies ours on purpose
        **service.desired_spec(),
    )


def _rollback(service: Service, user, data: dict) -> Rollout:
    return services.service_rollback(
        service=service, user=user, change_cause=data["change_cause"]
    )


def _undo(service: Service, user, data: dict) -> Rollout:
    return services.service_undo(
        service=service,
        user=user,
        to_revision=data["to_revision"],
        change_cause=data["change_cause"],
        recreate_confirmed=data["recreate_confirmed"],
    )


def _scale(service: Service, user, data: dict) -> Rollout:
    return services.service_scale(
        service=service,
        user=user,
        replicas=data["replicas"],
        change_cause=data["change_cause"],
    )


@dataclass(frozen=True)
class Operation:
    slug: str  # URL segment: admin/rollouts/service/<id>/<slug>/
    action: str  # changelist action name
    title: str
    explanation: str
    form_class: type[CauseForm]
    run: Callable[[Service, object, dict], Rollout]
    many: bool = True  # may run on several selected services at once

    def form(self, data=None, *, service: Service | None, initial=None) -> forms.Form:
        return self.form_class(data, service=service, initial=initial)


OPERATIONS = {
    op.slug: op
    for op in (
        Operation(
            "apply",
            "apply_now",
            "Apply now",
            "Queue a rollout of the current desired spec (image, replicas, "
            "policies) as it is saved.",
            ApplyForm,
            _apply,
        ),
        Operation(
            "rollback",
            "roll_back",
            "Roll back",
            "Ask the engine to restore the spec the service had before its last "
            "update. The rollback policy (parallelism, delay, monitor…) applies.",
            CauseForm,
            _rollback,
        ),
        Operation(
            "undo",
            "undo_to_revision",
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
            "Scale",
            "Change the number of tasks of a replicated service.",
            ScaleForm,
            _scale,
        ),
    )
}


def queued_message(rollout: Rollout) -> str:
    return (
        f"Rollout #{rollout.pk} queued for {rollout.service.name}; "
        "the controller applies it."
    )
