"""Input and output shapes of the write API (nested in the views for the
per-operation ones; here what several operations share)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from rollouts.api.serializers import StrictIntegerField, desired_serializer
from rollouts.api.views import RolloutOutput
from rollouts.models import Rollout

CAUSE_LENGTH = 500


def change_cause(*, required: bool) -> serializers.CharField:
    return serializers.CharField(
        required=required,
        allow_blank=not required,
        default="" if not required else serializers.empty,
        max_length=CAUSE_LENGTH,
        help_text="why (recorded with the change, shown in the history)",
    )


class ChangeOptions(serializers.Serializer):
    """What a change request carries besides the desired fields."""

    change_cause = change_cause(required=True)
    confirm_recreate = serializers.BooleanField(
        default=False,
        help_text="allow removing and re-creating the service (a mode change)",
    )
    resume = serializers.BooleanField(
        default=False, help_text="allow a change that resumes a paused failed update"
    )


# The request body of a change, for the schema: the desired fields as the
# read API names them (only those to change), from the same declaration as
# the read API's, and the options.
DesiredChangeSerializer = desired_serializer(
    "DesiredChangeSerializer", ChangeOptions, as_input=True
)


class WaitSerializer(serializers.Serializer):
    wait = StrictIntegerField(
        min_value=0,
        max_value=900,
        default=0,
        help_text="seconds to wait for the rollout's end before answering "
        "(0: answer once queued)",
    )


class LinksSerializer(serializers.Serializer):
    api = serializers.URLField()
    admin = serializers.URLField()


class RolloutResult(RolloutOutput):
    """A rollout as the write API answers it: its state, reason and revision,
    and where to follow it."""

    links = serializers.SerializerMethodField()

    class Meta(RolloutOutput.Meta):
        fields = (*RolloutOutput.Meta.fields, "links")

    @extend_schema_field(LinksSerializer)
    def get_links(self, rollout: Rollout) -> dict[str, str]:
        request = self.context.get("request")
        api = reverse("rollouts:rollout-detail", args=[rollout.pk], request=request)
        admin = reverse(
            "admin:rollouts_rollout_change", args=[rollout.pk], request=request
        )
        return {"api": api, "admin": admin}


class RefusalSerializer(serializers.Serializer):
    """Every refusal: `detail` in one line; `field_errors` by field when input
    was at fault ({"tag": ["..."]}, "__all__" for the rest)."""

    detail = serializers.CharField()
    field_errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class PausedSerializer(serializers.Serializer):
    """409 before anything was queued: the service's failed update is paused
    and this request would resume it (the same rule as the admin's and the
    command's)."""

    detail = serializers.CharField()
    paused_update = serializers.BooleanField()
    resume_with = serializers.DictField(
        required=False, help_text='send this too to resume on purpose: {"resume": true}'
    )


class BusySerializer(serializers.Serializer):
    """409 before anything was queued: the service has a rollout in flight."""

    detail = serializers.CharField()
    active_rollout = serializers.IntegerField()
