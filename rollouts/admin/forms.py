"""Forms operators fill in the admin to change a service or run a rollout action.

The forms parse and present; what is *valid* for a swarm service is decided by
`rollouts.spec.validation.validate_desired`, shared with `manage.py rollout`, so the
admin and the command can never disagree about what may be sent to the engine.
"""

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from rollouts.models import KnownImage, Rollout, Service
from rollouts.records import selectors
from rollouts.spec import validation
from rollouts.spec.fields import (
    BY_NAME,
    CHOICE,
    DURATION,
    FIELDS,
    SPEC_FIELDS,
    TEXT,
    ParseError,
    SpecField,
    human_duration,
)


class SpecFormField(forms.Field):
    """A number or duration typed in the admin, read by its field's own parser."""

    def __init__(self, spec: SpecField, **kwargs: Any) -> None:
        self.spec = spec
        kwargs.setdefault("required", not spec.optional)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        try:
            return self.spec.parse(value)
        except ParseError as error:  # says what the grammar is, in one line
            raise ValidationError(str(error), code="invalid") from None

    def prepare_value(self, value: Any) -> Any:
        if self.spec.kind == DURATION and isinstance(value, int | float) and value >= 0:
            return human_duration(value)
        return value


def form_field(spec: SpecField) -> forms.Field:
    """The admin's form field for one declared spec field."""
    label = spec.label[0].upper() + spec.label[1:]
    common: dict[str, Any] = {"label": label, "help_text": spec.help}
    if spec.kind == CHOICE:
        assert spec.choices is not None
        return forms.ChoiceField(choices=spec.choices.choices, **common)
    if spec.kind == TEXT:
        attrs = {"list": "rollouts-known-tags"} if spec.name == "tag" else {}
        return forms.CharField(
            max_length=spec.max_length, widget=forms.TextInput(attrs=attrs), **common
        )
    return SpecFormField(spec, **common)


def add_validation_errors(form: forms.BaseForm, error: ValidationError) -> None:
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for spec in FIELDS:  # every spec field as its declaration says
            self.fields[spec.name] = form_field(spec)

    def known_tags(self) -> list[str]:
        """Tags of this repository the controller's engine reported (datalist)."""
        prefix = f"{self.instance.image}:"
        refs = KnownImage.objects.filter(reference__startswith=prefix)
        return [ref[len(prefix) :] for ref in refs.values_list("reference", flat=True)]

    def desired(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in SPEC_FIELDS}

    def clean(self) -> dict[str, Any] | None:
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
        if mode_change_pending(service, desired["mode"]) and not self.cleaned_data.get(
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


def refusal(service: Service, active: Rollout) -> str:
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

    def __init__(
        self, *args: Any, service: Service | None = None, **kwargs: Any
    ) -> None:
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
    replicas = SpecFormField(
        BY_NAME["replicas"], required=True, help_text="Number of tasks."
    )
    field_order = ["replicas", "change_cause"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.service is not None:
            self.fields["replicas"].initial = self.service.replicas


class UndoForm(CauseForm, RecreateMixin):
    to_revision = forms.TypedChoiceField(
        coerce=int, label="Revision", help_text="The desired spec to put back."
    )
    field_order = ["to_revision", "change_cause", "recreate_confirmed"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.service is None:
            raise ValueError("undo works on one service at a time")
        revisions = list(self.service.revisions.order_by("-number"))
        to_revision = cast(forms.TypedChoiceField, self.fields["to_revision"])
        to_revision.choices = [
            (
                r.number,
                f"{r.number}: {r.spec.get('image')}:{r.spec.get('tag')}"
                f" — {r.change_cause}",
            )
            for r in revisions
        ]
        if len(revisions) > 1:  # like `kubectl rollout undo`: the one before
            to_revision.initial = revisions[1].number


def mode_change_pending(service: Service, mode: str | None = None) -> bool:
    """Whether applying `mode` (default: the desired one) needs a re-creation."""
    mode = mode or service.mode
    return mode != service.mode or bool(service.live_mode and service.live_mode != mode)
