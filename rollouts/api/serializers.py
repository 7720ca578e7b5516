"""Output serializers shared by several API views (nested pieces)."""

from typing import Any

from rest_framework import serializers

from rollouts.fields import (
    CHOICE,
    COUNT,
    FIELDS,
    TEXT,
    ParseError,
    SpecField,
    parse_int,
)
from rollouts.models import Revision, Rollout, RolloutEvent, Service


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


def _spec_serializer_field(spec: SpecField) -> serializers.Field:
    common: dict[str, Any] = {
        "help_text": spec.help + (f" ({spec.unit})" if spec.unit else "")
    }
    if spec.kind == TEXT:
        return serializers.CharField(**common)
    if spec.kind == CHOICE:
        assert spec.choices is not None
        return serializers.ChoiceField(choices=spec.choices.choices, **common)
    if spec.kind == COUNT:
        return serializers.IntegerField(allow_null=spec.optional, **common)
    return serializers.FloatField(**common)


# The desired spec; durations in seconds. One field per declared spec field.
DesiredSerializer = type(
    "DesiredSerializer",
    (serializers.Serializer,),
    {spec.name: _spec_serializer_field(spec) for spec in FIELDS},
)


class LiveSerializer(serializers.ModelSerializer):
    image = serializers.CharField(source="live_image")
    mode = serializers.CharField(source="live_mode")
    running = serializers.IntegerField(source="live_running")
    desired = serializers.IntegerField(source="live_desired")
    update_state = serializers.CharField(source="live_update_state")
    update_message = serializers.CharField(source="live_update_message")

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
