"""The write API's OpenAPI schema: what each operation takes and answers
(drf-spectacular), declared once for the views of operations.views."""

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.views import APIView

from dockercoins.api import DetailSerializer
from operations import idempotency
from operations.serializers import (
    BusySerializer,
    PausedSerializer,
    RefusalSerializer,
    RolloutResult,
    WaitSerializer,
)

REFUSALS: dict[int, Any] = {
    code: RefusalSerializer
    for code in (
        status.HTTP_400_BAD_REQUEST,
        status.HTTP_403_FORBIDDEN,
        status.HTTP_404_NOT_FOUND,
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    )
}
REFUSALS[status.HTTP_429_TOO_MANY_REQUESTS] = DetailSerializer

QUEUED_RESPONSES: dict[int, Any] = {
    200: RolloutResult,
    202: RolloutResult,
    409: PolymorphicProxySerializer(
        component_name="RolloutEndedOrBusy",
        serializers=[RolloutResult, BusySerializer, PausedSerializer],
        resource_type_field_name=None,
    ),
    422: RolloutResult,
    **REFUSALS,
}

IDEMPOTENCY = OpenApiParameter(
    idempotency.HEADER,
    str,
    OpenApiParameter.HEADER,
    description="a retry with the same key answers the first try's rollout "
    "instead of queueing another (1 to 200 printable ASCII characters)",
)


V = TypeVar("V", bound=type[APIView])


def operation(
    summary: str,
    *,
    responses: dict[int, Any],
    request: Any = None,
    parameters: tuple[Any, ...] = (IDEMPOTENCY,),
) -> Callable[[V], V]:
    """The schema of a view's POST: its summary, its body (the view's
    InputSerializer unless `request` names another), its answers."""

    def decorate(view: V) -> V:
        schema = extend_schema(
            summary=summary,
            request=request or getattr(view, "InputSerializer", None),
            parameters=list(parameters),
            responses=responses,
            tags=["rollouts (write)"],
        )
        return extend_schema_view(post=schema)(view)

    return decorate


def queueing(summary: str, request: Any = None) -> Callable[[V], V]:
    return operation(
        summary,
        request=request,
        parameters=(WaitSerializer, IDEMPOTENCY),
        responses=QUEUED_RESPONSES,
    )


def on_active(summary: str) -> Callable[[V], V]:
    return operation(summary, responses={200: RolloutResult, **REFUSALS})
