"""The read-only stats API: one APIView per figure, plus /api/stats/ with all.

Public like the page itself (no authentication to run per request). When
Redis is down every Redis endpoint answers 503 {"detail": "..."}. The chart's
rollout marks (/api/marks/) come from the database and its rate by version
(/api/versions/) from Prometheus: each answers 503 on its own when its source
is down, and the rest of the page keeps working.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dockercoins.api import DetailSerializer
from dockercoins.prometheus import PrometheusError
from mining import prometheus, selectors, stats, store
from rollouts.records.timeline import rollout_marks

F = TypeVar("F", bound=Callable[..., Any])


class RedisUnavailable(APIException):
    status_code = 503
    default_detail = "Redis is unavailable."
    default_code = "redis_unavailable"


class PrometheusDown(APIException):
    status_code = 503
    default_detail = "Prometheus is unavailable."
    default_code = "prometheus_unavailable"


class StatsView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, store.StoreUnavailable):
            exc = RedisUnavailable(detail=str(exc))
        elif isinstance(exc, PrometheusError):
            exc = PrometheusDown(detail=str(exc))
        return super().handle_exception(exc)


def stats_schema(
    output: type[serializers.Serializer], summary: str
) -> Callable[[F], F]:
    """The OpenAPI description of a stats GET: `output`, or 503 when Redis is down."""
    return extend_schema(
        summary=summary, tags=["mining"], responses={200: output, 503: DetailSerializer}
    )


class TotalsSerializer(serializers.Serializer):
    hashes = serializers.IntegerField()
    coins = serializers.IntegerField()


class RatesSerializer(serializers.Serializer):
    last_10s = serializers.FloatField(help_text="hashes/s over the last 10 s")
    last_60s = serializers.FloatField(help_text="hashes/s over the last 60 s")


class SeriesSerializer(serializers.Serializer):
    # Parallel arrays rather than a list of objects: 300 points serialize in
    # microseconds instead of milliseconds, and the chart wants arrays anyway.
    start = serializers.IntegerField(help_text="unix second of the first point")
    step = serializers.IntegerField(default=1)
    hashes = serializers.ListField(child=serializers.IntegerField())
    average = serializers.ListField(child=serializers.FloatField())


class LatencySerializer(serializers.Serializer):
    ms = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class ProbeSerializer(serializers.Serializer):
    rng = LatencySerializer()
    hasher = LatencySerializer()
    probed_at = serializers.FloatField()


class WorkersSerializer(serializers.Serializer):
    active = serializers.IntegerField(source="active_workers")
    heartbeat_ttl = serializers.SerializerMethodField()

    def get_heartbeat_ttl(self, board: selectors.Dashboard) -> int:
        return store.WORKER_TTL


class TotalsApi(StatsView):
    @stats_schema(TotalsSerializer, "hashes and coins so far")
    def get(self, request: Request) -> Response:
        return Response(TotalsSerializer(selectors.totals()).data)


class RateApi(StatsView):
    @stats_schema(RatesSerializer, "hashes/s over the last 10 s and 60 s")
    def get(self, request: Request) -> Response:
        return Response(RatesSerializer(selectors.dashboard().rates).data)


class SeriesApi(StatsView):
    @stats_schema(SeriesSerializer, "hashes per second, last 300 s")
    def get(self, request: Request) -> Response:
        return Response(SeriesSerializer(selectors.dashboard().series).data)


class WorkersApi(StatsView):
    @stats_schema(WorkersSerializer, "worker processes seen lately")
    def get(self, request: Request) -> Response:
        return Response(WorkersSerializer(selectors.dashboard()).data)


class LatencyApi(StatsView):
    @extend_schema_serializer(component_name="LatencyStats")
    class OutputSerializer(serializers.Serializer):
        latency = ProbeSerializer(allow_null=True)

    @stats_schema(OutputSerializer, "rng and hasher answer times")
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(selectors.dashboard()).data)


class StatsApi(StatsView):
    """Everything the page shows, in one response (the page polls this)."""

    @extend_schema_serializer(component_name="Stats")
    class OutputSerializer(serializers.Serializer):
        now = serializers.FloatField()
        totals = TotalsSerializer(source="*")
        rate = RatesSerializer(source="rates")
        series = SeriesSerializer()
        workers = WorkersSerializer(source="*")
        latency = ProbeSerializer(allow_null=True)

    @stats_schema(OutputSerializer, "everything the page shows")
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(selectors.dashboard()).data)


class MarkedRolloutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField(help_text="worker, rng or hasher")
    kind = serializers.CharField(help_text="apply, or rollback (the engine's)")
    state = serializers.CharField(
        help_text="queued, applying, watching (running), or how it ended: "
        "completed, rolled_back, failed, aborted, paused, superseded, cancelled"
    )
    version = serializers.CharField(help_text='the tag rolled out ("" for a rollback)')
    baseline_version = serializers.CharField(
        help_text="the tag it replaces, measured against (canary analysis)"
    )
    started = serializers.FloatField(help_text="unix time")
    promoted = serializers.FloatField(
        allow_null=True, help_text="unix time the canary was promoted"
    )
    finished = serializers.FloatField(allow_null=True, help_text="unix time")


class MarksApi(StatsView):
    """The rollouts of worker, rng and hasher that ran in the chart's window:
    when each started, was promoted (canary) and ended, and how."""

    @extend_schema_serializer(component_name="ChartMarks")
    class OutputSerializer(serializers.Serializer):
        since = serializers.FloatField(help_text="unix time the window starts")
        rollouts = MarkedRolloutSerializer(many=True)

    @extend_schema(
        summary="rollouts to mark on the chart",
        tags=["mining"],
        responses={200: OutputSerializer, 503: DetailSerializer},
    )
    def get(self, request: Request) -> Response:
        since = time.time() - selectors.CHART_SECONDS - stats.SETTLE_SECONDS
        moment = datetime.fromtimestamp(since, tz=UTC)
        marks = rollout_marks(since=moment)
        return Response(self.OutputSerializer({"since": since, "rollouts": marks}).data)


class VersionRateSerializer(serializers.Serializer):
    version = serializers.CharField()
    tasks = serializers.IntegerField(help_text="worker tasks of it now")
    rates = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="hashes/s at each step (null: no sample)",
    )


class VersionsApi(StatsView):
    """The workers' hash rate by image version (Prometheus), for the chart
    during a rollout."""

    @extend_schema_serializer(component_name="RateByVersion")
    class OutputSerializer(serializers.Serializer):
        start = serializers.IntegerField(help_text="unix second of the first point")
        step = serializers.IntegerField(help_text="seconds between points")
        versions = VersionRateSerializer(many=True)

    @extend_schema(
        summary="hashes/s by worker version, last 300 s",
        tags=["mining"],
        responses={200: OutputSerializer, 503: DetailSerializer},
    )
    def get(self, request: Request) -> Response:
        end = stats.last_settled_second(time.time())
        start = end - selectors.CHART_SECONDS + 1
        versions = prometheus.rate_by_version(start=start, end=end)
        answer = {"start": start, "step": prometheus.STEP_SECONDS, "versions": versions}
        return Response(self.OutputSerializer(answer).data)
