"""Output serializers shared by several API views (nested pieces)."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rollouts.models import (
    AnalysisMeasurement,
    Revision,
    Rollout,
    RolloutEvent,
    Service,
)
from rollouts.spec.drift import service_drift
from rollouts.spec.fields import (
    CHOICE,
    COUNT,
    DURATION,
    FIELDS,
    TEXT,
    ParseError,
    SpecField,
    parse_int,
)


class StrictIntegerField(serializers.IntegerField):
    """An integer from ASCII digits only (DRF's own accepts "٣" as 3)."""

    def to_internal_value(self, data: Any) -> int:
        try:
            value = parse_int(data)
        except ParseError:
            self.fail("invalid")
        return super().to_internal_value(value)


class TaskSerializer(serializers.Serializer):
    """One task of `docker service ps`, as the controller recorded it."""

    id = serializers.CharField(default="")
    image = serializers.CharField(default="")
    node = serializers.CharField(default="")
    desired_state = serializers.CharField(default="")
    state = serializers.CharField(default="")
    since = serializers.CharField(default="")
    error = serializers.CharField(default="")
    message = serializers.CharField(default="")
    exit_code = serializers.IntegerField(default=None, allow_null=True)


class SlotSerializer(serializers.Serializer):
    """A slot (a node for a global service): current task first, then the
    earlier attempts newest first (the `\\_` rows of `docker service ps`)."""

    slot = serializers.CharField(default="")
    tasks = TaskSerializer(many=True, default=list)


@extend_schema_field(
    {
        "oneOf": [{"type": "number"}, {"type": "string"}],
        "description": "seconds, or Docker's notation: 5s, 500ms, 1m30s",
    }
)
class DurationInputField(serializers.JSONField):
    """Schema only: the value goes, as sent, to the field's own parser."""


def spec_serializer_field(spec: SpecField, *, as_input: bool) -> serializers.Field:
    """The one serializer field of a declared spec field: as the read API
    answers it (durations in seconds) or, `as_input`, as the write API takes
    it (optional: only the fields to change; a duration in seconds or Docker's
    notation; values judged by the field's own parser, as the admin's)."""
    common: dict[str, Any] = {
        "help_text": spec.help + (f" ({spec.unit})" if spec.unit else "")
    }
    if as_input:
        common["required"] = False
    if spec.kind == TEXT:
        return serializers.CharField(**common)
    if spec.kind == CHOICE:
        assert spec.choices is not None
        return serializers.ChoiceField(choices=spec.choices.choices, **common)
    if spec.kind == COUNT:
        return serializers.IntegerField(allow_null=spec.optional, **common)
    if spec.kind == DURATION and as_input:
        return DurationInputField(allow_null=spec.optional, **common)
    return serializers.FloatField(allow_null=spec.optional, **common)


def desired_serializer(
    name: str, base: type[serializers.Serializer], *, as_input: bool
) -> type[serializers.Serializer]:
    """`base` with one field per declared spec field (spec_serializer_field)."""
    fields = {
        spec.name: spec_serializer_field(spec, as_input=as_input) for spec in FIELDS
    }
    return type(name, (base,), fields)


# The desired spec; durations in seconds. One field per declared spec field.
DesiredSerializer = desired_serializer(
    "DesiredSerializer", serializers.Serializer, as_input=False
)


class DriftRowSerializer(serializers.Serializer):
    """One difference between what we last applied and what runs."""

    field = serializers.CharField()
    applied = serializers.CharField()
    live = serializers.CharField()


class DriftSerializer(serializers.Serializer):
    """What runs vs what we last applied (rollouts.spec.drift); `updated_at` is the
    engine's UpdatedAt of the service, when it tells."""

    differences = DriftRowSerializer(many=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class FailureSerializer(serializers.Serializer):
    """A new task of a rollout that ended, as the controller first saw it
    (rollouts.control.outcome.ended_task); `at` is the engine's timestamp text."""

    task = serializers.CharField()
    slot = serializers.CharField()
    image = serializers.CharField()
    state = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    at = serializers.CharField(allow_blank=True)


class LiveSerializer(serializers.ModelSerializer):
    image = serializers.CharField(source="live_image")
    mode = serializers.CharField(source="live_mode")
    running = serializers.IntegerField(source="live_running")
    desired = serializers.IntegerField(source="live_desired")
    update_state = serializers.CharField(source="live_update_state")
    update_message = serializers.CharField(source="live_update_message")
    drift = serializers.SerializerMethodField()

    @extend_schema_field(DriftSerializer(allow_null=True))
    def get_drift(self, service: Service) -> dict[str, Any] | None:
        """What runs vs what we last applied (rollouts.spec.drift); null in sync."""
        found = service_drift(service)
        if not found:
            return None
        return DriftSerializer(
            {
                "differences": [
                    {"field": label, "applied": old, "live": new}
                    for label, old, new in found["differences"]
                ],
                "updated_at": found["updated_at"],
            }
        ).data

    class Meta:
        model = Service
        fields = (
            "image",
            "mode",
            "running",
            "desired",
            "update_state",
            "update_message",
            "synced_at",
            "missing",
            "drift",
        )


class ProgressSerializer(serializers.Serializer):
    """k of N tasks on the new spec."""

    done = serializers.IntegerField(source="tasks_done")
    total = serializers.IntegerField(source="tasks_total")


class RolloutSummarySerializer(serializers.ModelSerializer):
    progress = ProgressSerializer(source="*")

    class Meta:
        model = Rollout
        fields = ("id", "kind", "state", "update_state", "progress", "requested_at")


class ServiceRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ("id", "name")


class RevisionSerializer(serializers.ModelSerializer):
    created_by: "serializers.StringRelatedField[Revision]" = (
        serializers.StringRelatedField(allow_null=True)
    )

    class Meta:
        model = Revision
        fields = (
            "number",
            "spec",
            "image_id",
            "image_digest",
            "change_cause",
            "created_by",
            "created_at",
        )


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RolloutEvent
        fields = ("at", "kind", "message")


class MeasurementSerializer(serializers.ModelSerializer):
    """One analysis measurement (rollouts.analysis.rules): per task, in the
    template's unit; value, baseline and limit are null when there was no data."""

    class Meta:
        model = AnalysisMeasurement
        fields = (
            "at",
            "template",
            "phase",
            "value",
            "baseline",
            "limit",
            "new_version",
            "old_version",
            "new_tasks",
            "old_tasks",
            "dry_run",
            "message",
        )
