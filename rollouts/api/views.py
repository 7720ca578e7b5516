"""One read-only APIView per operation, each with its own output serializer.

Staff only: the task table names nodes and images, and error texts can carry
paths and commands an anonymous visitor has no business reading.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dockercoins.api import DetailSerializer
from rollouts.api.serializers import (
    DesiredSerializer,
    EventSerializer,
    FailureSerializer,
    LiveSerializer,
    MeasurementSerializer,
    ProgressSerializer,
    RevisionSerializer,
    RolloutSummarySerializer,
    ServiceRefSerializer,
    SlotSerializer,
    StrictIntegerField,
)
from rollouts.models import ACTIVE_STATES, Rollout, RolloutState, Service
from rollouts.records import selectors
from rollouts.spec.fields import ParseError, parse_id

F = TypeVar("F", bound=Callable[..., Any])


class StaffApi(APIView):
    permission_classes = [IsAdminUser]


def staff_schema(
    output: Any, summary: str, errors: dict[int, Any] | None = None, **more: Any
) -> Callable[[F], F]:
    """OpenAPI: `output`; 403 for anyone not staff, 404 for an unknown id, 429
    while failed logins lock the Basic-auth credentials (dockercoins.auth)."""
    refusals = {code: DetailSerializer for code in (403, 404, 429)}
    errors = {**refusals, **(errors or {})}
    responses = {200: output, **errors}
    return extend_schema(summary=summary, responses=responses, **more)


def services_with_active() -> QuerySet[Service]:
    active = Rollout.objects.filter(state__in=ACTIVE_STATES).order_by("-id")
    return Service.objects.prefetch_related(
        Prefetch("rollouts", active, to_attr="active_rollouts")
    )


def get_service(key: str, queryset: QuerySet[Service] | None = None) -> Service:
    """A service by id, swarm name (dockercoins_worker) or short name (worker),
    the names resolved as `manage.py rollout` resolves them."""
    queryset = Service.objects.all() if queryset is None else queryset
    try:
        pk = parse_id(key)
    except ParseError:
        pk = None  # a name (or nothing we know): looked up by name
    try:
        if pk is not None:
            return queryset.get(pk=pk)
        return queryset.get(pk=selectors.service_get(name=key).pk)
    except Service.DoesNotExist as error:
        detail = str(error) if pk is None else f"no service with id {key}"
        raise NotFound(detail) from None


class ServiceOutput(serializers.ModelSerializer):
    desired = DesiredSerializer(source="*")
    live = LiveSerializer(source="*")
    active_rollout = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields: tuple[str, ...] = (
            "id",
            "name",
            "short_name",
            "stack",
            "swarm_id",
            "desired",
            "live",
            "active_rollout",
        )

    @extend_schema_field(RolloutSummarySerializer(allow_null=True))
    def get_active_rollout(self, service: Service) -> dict[str, Any] | None:
        active: list[Rollout] = getattr(service, "active_rollouts", [])
        return RolloutSummarySerializer(active[0]).data if active else None


class ServiceListApi(StaffApi):
    @staff_schema(ServiceOutput(many=True), "every service: desired and live")
    def get(self, request: Request) -> Response:
        return Response(ServiceOutput(services_with_active(), many=True).data)


class ServiceDetailApi(StaffApi):
    @extend_schema_serializer(component_name="ServiceDetail")
    class OutputSerializer(ServiceOutput):
        tasks = SlotSerializer(source="live_tasks", many=True)

        class Meta(ServiceOutput.Meta):
            fields = (*ServiceOutput.Meta.fields, "tasks")

    @staff_schema(OutputSerializer, "one service, with its tasks")
    def get(self, request: Request, service: str) -> Response:
        found = get_service(service, services_with_active())
        return Response(self.OutputSerializer(found).data)


class ServiceRevisionsApi(StaffApi):
    @staff_schema(RevisionSerializer(many=True), "a service's revisions")
    def get(self, request: Request, service: str) -> Response:
        found = get_service(service)
        revisions = found.revisions.select_related("created_by").order_by("-number")
        return Response(RevisionSerializer(revisions, many=True).data)


class RolloutOutput(serializers.ModelSerializer):
    service = ServiceRefSerializer()
    revision = serializers.IntegerField(
        source="revision.number", default=None, allow_null=True
    )
    requested_by: "serializers.StringRelatedField[Rollout]" = (
        serializers.StringRelatedField(allow_null=True)
    )
    progress = ProgressSerializer(source="*")

    class Meta:
        model = Rollout
        fields: tuple[str, ...] = (
            "id",
            "service",
            "revision",
            "kind",
            "state",
            "change_cause",
            "reason",
            "update_state",
            "progress",
            "requested_by",
            "requested_at",
            "started_at",
            "finished_at",
        )


class RolloutListApi(StaffApi):
    class FilterSerializer(serializers.Serializer):
        service = serializers.CharField(required=False)
        state = serializers.ChoiceField(choices=RolloutState.choices, required=False)
        limit = StrictIntegerField(min_value=1, max_value=500, default=50)

    @staff_schema(
        RolloutOutput(many=True),
        "rollouts, newest first",
        parameters=[FilterSerializer],
        # 400 names the bad filter: {"limit": ["..."]}.
        errors={400: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)  # 400 naming the bad filter
        wanted = filters.validated_data
        rollouts = Rollout.objects.select_related("service", "revision", "requested_by")
        if "service" in wanted:
            try:
                rollouts = rollouts.filter(service=get_service(wanted["service"]))
            except NotFound as error:
                raise serializers.ValidationError({"service": [error.detail]}) from None
        if "state" in wanted:
            rollouts = rollouts.filter(state=wanted["state"])
        data = RolloutOutput(rollouts[: wanted["limit"]], many=True).data
        return Response(data)


class RolloutDetailApi(StaffApi):
    @extend_schema_serializer(component_name="RolloutDetail")
    class OutputSerializer(RolloutOutput):
        events = EventSerializer(many=True)
        measurements = MeasurementSerializer(many=True)
        tasks = SlotSerializer(source="service.live_tasks", many=True)
        failures = FailureSerializer(many=True)

        class Meta(RolloutOutput.Meta):
            fields = (
                *RolloutOutput.Meta.fields,
                "recreate_confirmed",
                "applied_at",
                "failures",
                "canary_state",
                "baseline_version",
                "events",
                "measurements",
                "tasks",
            )

    @staff_schema(OutputSerializer, "one rollout, with events and tasks")
    def get(self, request: Request, rollout: str) -> Response:
        rollouts = Rollout.objects.select_related(
            "service", "revision", "requested_by"
        ).prefetch_related("events", "measurements")
        try:
            found = rollouts.filter(pk=parse_id(rollout)).first()
        except ParseError:
            found = None
        if found is None:
            raise NotFound(f"No rollout {rollout!r}.")
        return Response(self.OutputSerializer(found).data)
