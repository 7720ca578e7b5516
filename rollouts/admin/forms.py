"""Forms operators fill in the admin to change a service or run a rollout action.

The forms parse and present. Whether a request may be made is decided by its
function in `rollouts.records.requests` alone (the one gate, shared with the API
and `manage.py rollout`): a form shows that function's refusal at the fields it
names, so the admin and the command can never disagree.
"""

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from rollouts.models import Rollout, Service
from rollouts.records import requests
from rollouts.records.requests import User
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
        if field in form.fields:
            form.add_error(field, errors)
        else:  # "__all__" or a name the form does not show
            label = "" if field == "__all__" else f"{field}: "
            form.add_error(None, [f"{label}{msg}" for e in errors for msg in e])


class ServiceChangeForm(forms.ModelForm):
    """The desired spec of one service, plus who-and-why for its new revision.

    Validating the form makes the request: once every field parsed, the last
    step of validation hands the values to `requests.service_change`, which
    either queues the rollout (`queued`) or refuses, and its refusal becomes
    the form's errors. The admin's change view validates and saves inside one
    transaction, so a refusal leaves nothing behind. `user` is set by the admin
    (ServiceAdmin.get_form): who makes the request."""

    user: User = None
    queued: Rollout | None = None

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
    resume_confirmed = forms.BooleanField(
        required=False,
        label="Resume the paused failed update",
        help_text="Required when the engine paused a failed update and this "
        "change keeps its image: the engine resumes it at the next write.",
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
        return Service.known_tags(self.instance.image)

    def desired(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in SPEC_FIELDS}

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if any(name in self.errors for name in SPEC_FIELDS):
            return cleaned  # the spec is incomplete; its own errors say why
        if self.desired() == self.instance.desired_spec():
            # The page's own rule: "Apply now" is the way to re-apply.
            raise ValidationError(
                "Nothing changed. Use the “Apply now” action to re-apply the "
                "current spec."
            )
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # Django's, not in its stubs
        if self.errors:
            return
        # A fresh row: `self.instance` already carries the form's values.
        service = Service.objects.get(pk=self.instance.pk)
        try:
            self.queued = requests.service_change(
                service=service,
                user=self.user,
                change_cause=self.cleaned_data["change_cause"],
                recreate_confirmed=self.cleaned_data.get("recreate_confirmed", False),
                resume_confirmed=self.cleaned_data.get("resume_confirmed", False),
                **self.desired(),
            )
        except ValidationError as error:
            add_validation_errors(self, error)


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


class ResumeMixin(forms.Form):
    resume_confirmed = forms.BooleanField(
        required=False,
        label="Resume the paused failed update",
        help_text="Needed only when the engine paused a failed update: it "
        "resumes it, with its image, at the next write.",
    )


class ApplyForm(CauseForm, RecreateMixin, ResumeMixin):
    pass


class ScaleForm(CauseForm, ResumeMixin):
    replicas = SpecFormField(
        BY_NAME["replicas"], required=True, help_text="Number of tasks."
    )
    field_order = ["replicas", "change_cause", "resume_confirmed"]

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
