"""Output serializers shared by several API views (nested pieces)."""

from rest_framework import serializers

from rollouts.drift import service_drift
from rollouts.models import SPEC_FIELDS, Revision, Rollout, RolloutEvent, Service


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
    exit_code = serializers.IntegerField(default=None)


class SlotSerializer(serializers.Serializer):
    """A slot (a node for a global service): current task first, then the
    earlier attempts newest first (the `\\_` rows of `docker service ps`)."""

    slot = serializers.CharField(default="")
    tasks = TaskSerializer(many=True, default=list)


class DesiredSerializer(serializers.ModelSerializer):
    """The desired spec; durations in seconds."""

    class Meta:
        model = Service
        fields = SPEC_FIELDS


class LiveSerializer(serializers.ModelSerializer):
    image = serializers.CharField(source="live_image")
    mode = serializers.CharField(source="live_mode")
    running = serializers.IntegerField(source="live_running")
    desired = serializers.IntegerField(source="live_desired")
    update_state = serializers.CharField(source="live_update_state")
    update_message = serializers.CharField(source="live_update_message")
    drift = serializers.SerializerMethodField()

    def get_drift(self, service: Service) -> dict | None:
        """What runs vs what we last applied (rollouts.drift); null in sync."""
        found = service_drift(service)
        if not found:
            return None
        return {
            "differences": [
                {"field": label, "applied": old, "live": new}
                for label, old, new in found["differences"]
            ],
            "updated_at": found["updated_at"],
        }

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
    created_by = serializers.StringRelatedField()

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
