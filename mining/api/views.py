"""The read-only stats API: one APIView per figure, plus /api/stats/ with all.

Public like the page itself (no authentication to run per request). When
Redis is down every endpoint answers 503 {"detail": "..."}.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dockercoins.api import DetailSerializer
from mining import selectors, store

F = TypeVar("F", bound=Callable[..., Any])


class RedisUnavailable(APIException):
    status_code = 503
    default_detail = "Redis is unavailable."
    default_code = "redis_unavailable"


class StatsView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, store.StoreUnavailable):
            exc = RedisUnavailable(detail=str(exc))
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
