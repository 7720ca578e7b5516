"""Forms operators fill in the admin to change a service or run a rollout action.

The forms parse and present; what is *valid* for a swarm service is decided by
`rollouts.validation.validate_desired`, shared with `manage.py rollout`, so the
admin and the command can never disagree about what may be sent to the engine.
"""

import math

from django import forms
from django.core.exceptions import ValidationError

from rollouts import selectors, specs, validation
from rollouts.models import SPEC_FIELDS, KnownImage, Service

DURATION_FIELDS = (
    "update_delay",
    "update_monitor",
    "rollback_delay",
    "rollback_monitor",
    "progress_deadline",
    "stable_for",
)


class DurationField(forms.Field):
    """A duration in seconds, typed as seconds or in Docker's notation."""

    default_error_messages = {
        "invalid": "Enter seconds (e.g. 5 or 0.5) or a duration like 500ms, 20s, 1m30s."
    }

    def to_python(self, value) -> float | None:
        if value in self.empty_values:
            return None
        if isinstance(value, int | float):
            return float(value)
        try:
            # A leading "-" is kept so that validation, not parsing, explains
            # why a negative duration is refused.
            text = str(value).strip().replace(" ", "")
            sign, text = (-1.0, text[1:]) if text.startswith("-") else (1.0, text)
            seconds = sign * specs.parse_duration(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):  # "nan" and "1e999" parse as floats
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return seconds

    def prepare_value(self, value):
        if isinstance(value, int | float) and value >= 0:
            return specs.human_duration(value)
        return value


_HELP = {
    "image": "Repository, without the tag (dockercoins).",
    "tag": "Tag to run (1.0, 1.1, bugged). Must be an image the swarm node has.",
    "mode": "Replicated runs N tasks; global runs one task on every node. "
    "Changing it removes and re-creates the service.",
    "replicas": "Number of tasks. Leave empty for a global service.",
    "update_parallelism": "Tasks replaced at once (engine default 1; 0 = all at once).",
    "update_delay": "Wait between batches, e.g. 5s (engine default 0s).",
    "update_failure_action": "What the engine does when too many new tasks fail "
    "(engine default pause).",
    "update_monitor": "How long each new task is watched for failure after it "
    "starts, e.g. 20s (engine default 5s).",
    "update_max_failure_ratio": "Share of tasks that may fail before the failure "
    "action, 0 to 1 (0.2 = 20%; engine default 0).",
    "update_order": "stop-first stops an old task before starting its "
    "replacement; start-first overlaps them (engine default stop-first).",
    "rollback_parallelism": "Tasks rolled back at once (engine default 1).",
    "rollback_delay": "Wait between rollback batches (engine default 0s).",
    "rollback_failure_action": "What the engine does when a rollback itself fails "
    "(engine default pause).",
    "rollback_monitor": "How long each rolled-back task is watched (default 5s).",
    "rollback_max_failure_ratio": "Share of tasks that may fail during a rollback, "
    "0 to 1 (engine default 0).",
    "rollback_order": "Order of stop and start during a rollback.",
    "progress_deadline": "A rollout not finished after this long is failed, e.g. "
    "10m (default 10m). Swarm alone would wait forever.",
    "deadline_action": "What to do when the deadline passes.",
    "stable_for": "How long new tasks must stay up before a rollout completes, "
    "e.g. 30s (like Kubernetes' minReadySeconds). Empty: the update monitor.",
}


def add_validation_errors(form: forms.Form, error: ValidationError) -> None:
    """Attach a service-layer ValidationError to the form fields it names."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        if field == "mode" and "mode" not in form.fields:
            # An action form has no mode field: the service complains about
            # the mode only when a re-creation was not confirmed.
            field = "recreate_confirmed"
        if field in form.fields:
            form.add_error(field, errors)
        else:  # "__all__" or a name the form does not show
            label = "" if field == "__all__" else f"{field}: "
            form.add_error(None, [f"{label}{msg}" for e in errors for msg in e])


class ServiceChangeForm(forms.ModelForm):
    """The desired spec of one service, plus who-and-why for its new revision."""

    change_cause = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why you make this change; recorded with the revision "
        "(e.g. “worker 1.1: 10x less sleep”).",
    )
    recreate_confirmed = forms.BooleanField(
        required=False,
        label="I understand this removes and re-creates the service",
        help_text="Required when the mode changes: the engine cannot change it "
        "in place, so the service is briefly gone.",
    )

    class Meta:
        model = Service
        fields = SPEC_FIELDS
        field_classes = {name: DurationField for name in DURATION_FIELDS}
        help_texts = _HELP
        labels = {"image": "Image repository", "tag": "Image tag"}
        widgets = {"tag": forms.TextInput(attrs={"list": "rollouts-known-tags"})}

    def known_tags(self) -> list[str]:
        """Tags of this repository the controller's engine reported (datalist)."""
        prefix = f"{self.instance.image}:"
        refs = KnownImage.objects.filter(reference__startswith=prefix)
        return [ref[len(prefix) :] for ref in refs.values_list("reference", flat=True)]

    def desired(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in SPEC_FIELDS}

    def clean(self) -> dict:
        cleaned = super().clean()
        if any(name in self.errors for name in SPEC_FIELDS):
            return cleaned  # the spec is incomplete; its own errors say why
        desired = self.desired()
        service = self.instance
        if desired == service.desired_spec():
            raise ValidationError(
                "Nothing changed. Use the “Apply now” action to re-apply the "
                "current spec."
            )
        if mode_change_pending(service, desired["mode"]) and not cleaned.get(
            "recreate_confirmed"
        ):
            self.add_error(
                "recreate_confirmed",
                f"Changing the mode to {desired['mode']} removes and re-creates "
                "the service; tick this box to confirm.",
            )
        try:
            validation.validate_desired(service=service, desired=desired)
        except ValidationError as error:
            add_validation_errors(self, error)
        active = selectors.rollout_active_for(service=service)
        if active is not None:
            raise ValidationError(refusal(service, active))
        return cleaned


def refusal(service: Service, active) -> str:
    """The one message every refused operation shows."""
    return (
        f"{service.name} already has rollout #{active.pk} ({active.state}); "
        "wait until it finishes, then try again."
    )


class CauseForm(forms.Form):
    """Base of the action forms: every action is attributed and explained."""

    change_cause = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why; recorded with the rollout.",
    )

    def __init__(self, *args, service: Service | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.service = service  # None when the action runs on several services


class RecreateMixin(forms.Form):
    recreate_confirmed = forms.BooleanField(
        required=False,
        label="I understand a mode change removes and re-creates the service",
        help_text="Needed only when the mode to apply differs from the live one.",
    )


class ApplyForm(CauseForm, RecreateMixin):
    pass


class ScaleForm(CauseForm):
    replicas = forms.IntegerField(min_value=0, help_text="Number of tasks.")
    field_order = ["replicas", "change_cause"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.service is not None:
            self.fields["replicas"].initial = self.service.replicas


class UndoForm(CauseForm, RecreateMixin):
    to_revision = forms.TypedChoiceField(
        coerce=int, label="Revision", help_text="The desired spec to put back."
    )
    field_order = ["to_revision", "change_cause", "recreate_confirmed"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        revisions = list(self.service.revisions.order_by("-number"))
        self.fields["to_revision"].choices = [
            (
                r.number,
                f"{r.number}: {r.spec.get('image')}:{r.spec.get('tag')}"
                f" — {r.change_cause}",
            )
            for r in revisions
        ]
        if len(revisions) > 1:  # like `kubectl rollout undo`: the one before
            self.fields["to_revision"].initial = revisions[1].number


def mode_change_pending(service: Service, mode: str | None = None) -> bool:
    """Whether applying `mode` (default: the desired one) needs a re-creation."""
    mode = mode or service.mode
    return mode != service.mode or bool(service.live_mode and service.live_mode != mode)
