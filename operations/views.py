"""The write API: one APIView per operator action on a service, each calling the
rollouts service function the admin and `manage.py rollout` call.

POST /api/rollouts/services/{service}/rollouts/   change desired fields, queue
POST .../scale/ .../undo/ .../rollback/ .../reapply/   queue a rollout
POST .../abort/    end the rollout in flight       POST .../adopt/   adopt drift
POST .../promote/  let a held canary's update go on

Those that queue a rollout accept `?wait=N` (rollouts.waiting) and an
`Idempotency-Key` header (operations.idempotency).
"""

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from dockercoins.api import DetailSerializer
from operations import idempotency
from operations.permissions import CanApplyRollouts, check_scope
from operations.serializers import (
    BusySerializer,
    ChangeOptions,
    DesiredChangeSerializer,
    PausedSerializer,
    RefusalSerializer,
    RolloutResult,
    WaitSerializer,
    change_cause,
)
from operations.waiting import rollout_wait, status_for
from rollouts.api.serializers import RevisionSerializer, StrictIntegerField
from rollouts.api.views import get_service
from rollouts.models import Rollout, Service
from rollouts.records import requests as services
from rollouts.records.selectors import rollout_active_for
from rollouts.spec.fields import SPEC_FIELDS

F = TypeVar("F", bound=Callable[..., Any])


class BadRequest(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"


class Busy(Exception):
    def __init__(self, active: Rollout) -> None:
        super().__init__(services.busy_refusal(active.service, active))
        self.active = active


def refusal(errors: dict[str, list[str]]) -> Response:
    """400 with the reasons by field, and all of them in one line."""
    lines = [
        "; ".join(messages)
        if field == NON_FIELD_ERRORS
        else f"{field}: " + "; ".join(messages)
        for field, messages in errors.items()
    ]
    detail = "; ".join(lines) or "invalid request"
    return Response({"detail": detail, "field_errors": errors}, status=400)


def _messages(errors: Any) -> dict[str, list[str]]:
    """DRF's serializer errors as {field: [text]} (nested lists flattened)."""
    return {
        NON_FIELD_ERRORS if f == "non_field_errors" else f: [str(m) for m in msgs]
        for f, msgs in errors.items()
    }


_REFUSALS: dict[int, Any] = {
    code: RefusalSerializer
    for code in (
        status.HTTP_400_BAD_REQUEST,
        status.HTTP_403_FORBIDDEN,
        status.HTTP_404_NOT_FOUND,
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    )
}
_REFUSALS[status.HTTP_429_TOO_MANY_REQUESTS] = DetailSerializer

_QUEUED_RESPONSES: dict[int, Any] = {
    200: RolloutResult,
    202: RolloutResult,
    409: PolymorphicProxySerializer(
        component_name="RolloutEndedOrBusy",
        serializers=[RolloutResult, BusySerializer, PausedSerializer],
        resource_type_field_name=None,
    ),
    422: RolloutResult,
    **_REFUSALS,
}

_IDEMPOTENCY = OpenApiParameter(
    idempotency.HEADER,
    str,
    OpenApiParameter.HEADER,
    description="a retry with the same key answers the first try's rollout "
    "instead of queueing another (1 to 200 printable ASCII characters)",
)


class ServiceOperationApi(APIView):
    """POST on a service's sub-path: validate, check scope, run `perform`."""

    permission_classes = [CanApplyRollouts]
    parser_classes = [JSONParser]
    InputSerializer: ClassVar[type[serializers.Serializer]]

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def read_input(self, request: Request) -> dict[str, Any] | Response:
        if not isinstance(request.data, dict):
            raise BadRequest("the body is a JSON object")
        found = self.InputSerializer(data=request.data)
        if not found.is_valid():
            return refusal(_messages(found.errors))
        unknown = sorted(set(request.data) - set(found.fields))
        if unknown:
            return refusal({NON_FIELD_ERRORS: [f"unknown fields: {unknown}"]})
        return dict(found.validated_data)

    def user(self, request: Request) -> User:
        assert isinstance(request.user, User)  # CanApplyRollouts let it in
        return request.user


class QueueingApi(ServiceOperationApi):
    """An operation that queues a rollout: `?wait=N`, `Idempotency-Key`, and
    the rollout's end as the status code (operations.waiting)."""

    def post(self, request: Request, service: str) -> Response:
        found = get_service(service)
        check_scope(request, found)
        wait = WaitSerializer(data=request.query_params)
        if not wait.is_valid():
            return refusal(_messages(wait.errors))
        data = self.read_input(request)
        if isinstance(data, Response):
            return data
        user = self.user(request)
        key = idempotency.request_key(request)

        def perform() -> Rollout:
            active = rollout_active_for(service=found)
            if active is not None:
                raise Busy(active)
            rollout: Rollout = self.perform(found, user, data)
            return rollout

        try:
            if key is None:
                rollout, replayed = perform(), False
            else:
                rollout, replayed = idempotency.once(request, user, key, perform)
        except Busy as busy:
            body = {"detail": str(busy), "active_rollout": busy.active.pk}
            return Response(body, status=status.HTTP_409_CONFLICT)
        except DjangoValidationError as error:
            if _paused(error):
                return self.paused(error)
            return refusal(_django_messages(error))
        rollout = rollout_wait(rollout, seconds=wait.validated_data["wait"])
        return self.answer(request, rollout, replayed)

    def paused(self, error: DjangoValidationError) -> Response:
        """409: the service's failed update is paused, and this request would
        resume it; how to resume on purpose when the operation can."""
        detail = "; ".join(error.messages)
        body: dict[str, Any] = {"detail": detail, "paused_update": True}
        if "resume" in self.InputSerializer().fields:
            body["detail"] += ' (send "resume": true to resume it on purpose)'
            body["resume_with"] = {"resume": True}
        return Response(body, status=status.HTTP_409_CONFLICT)

    @staticmethod
    def answer(request: Request, rollout: Rollout, replayed: bool) -> Response:
        headers = {"Location": reverse("rollouts:rollout-detail", args=[rollout.pk])}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        data = RolloutResult(rollout, context={"request": request}).data
        return Response(data, status=status_for(rollout), headers=headers)


# The service's names for fields the API calls otherwise.
_API_NAMES = {"recreate_confirmed": "confirm_recreate", "resume_confirmed": "resume"}


def _paused(error: DjangoValidationError) -> bool:
    """Whether `error` is the paused-update refusal (records.requests.PAUSED)."""
    found = getattr(error, "error_dict", {}).get("resume_confirmed", [])
    return any(e.code == services.PAUSED for e in found)


def _django_messages(error: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            _API_NAMES.get(f, f): list(msgs) for f, msgs in error.message_dict.items()
        }
    return {NON_FIELD_ERRORS: list(error.messages)}


def queueing_schema(summary: str, request: Any) -> Callable[[F], F]:
    return extend_schema(
        summary=summary,
        request=request,
        parameters=[WaitSerializer, _IDEMPOTENCY],
        responses=_QUEUED_RESPONSES,
        tags=["rollouts (write)"],
    )


class ServiceChangeApi(QueueingApi):
    """Change desired fields (only those sent) as a new revision, and queue it."""

    InputSerializer = ChangeOptions

    @queueing_schema("change desired fields, queue a rollout", DesiredChangeSerializer)
    def post(self, request: Request, service: str) -> Response:
        return super().post(request, service)

    def read_input(self, request: Request) -> dict[str, Any] | Response:
        if not isinstance(request.data, dict):
            raise BadRequest("the body is a JSON object")
        options = {k: v for k, v in request.data.items() if k not in SPEC_FIELDS}
        found = ChangeOptions(data=options)
        if not found.is_valid():
            return refusal(_messages(found.errors))
        unknown = sorted(set(options) - set(found.fields))
        if unknown:
            return refusal(
                {
                    NON_FIELD_ERRORS: [
                        f"unknown fields: {unknown} (desired fields: "
                        f"{', '.join(SPEC_FIELDS)})"
                    ]
                }
            )
        # Values as sent: rollouts.fields parses them, as for the admin.
        desired = {k: v for k, v in request.data.items() if k in SPEC_FIELDS}
        return {**found.validated_data, "desired": desired}

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Rollout:
        return services.service_change(
            service=service,
            user=user,
            change_cause=data["change_cause"],
            recreate_confirmed=data["confirm_recreate"],
            resume_confirmed=data["resume"],
            carry=list(data["desired"]),
            **data["desired"],
        )


class ServiceScaleApi(QueueingApi):
    @extend_schema_serializer(component_name="ScaleRequest")
    class InputSerializer(serializers.Serializer):
        replicas = StrictIntegerField(help_text="tasks wanted")
        change_cause = change_cause(required=False)
        resume = serializers.BooleanField(default=False)

    @queueing_schema("scale a replicated service", InputSerializer)
    def post(self, request: Request, service: str) -> Response:
        return super().post(request, service)

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Rollout:
        return services.service_scale(
            service=service,
            user=user,
            replicas=data["replicas"],
            change_cause=data["change_cause"],
            resume_confirmed=data["resume"],
        )


class ServiceUndoApi(QueueingApi):
    @extend_schema_serializer(component_name="UndoRequest")
    class InputSerializer(serializers.Serializer):
        to_revision = StrictIntegerField(
            required=False,
            allow_null=True,
            default=None,
            help_text="revision number; none: the one before the current",
        )
        change_cause = change_cause(required=False)
        confirm_recreate = serializers.BooleanField(default=False)

    @queueing_schema("undo to an earlier revision", InputSerializer)
    def post(self, request: Request, service: str) -> Response:
        return super().post(request, service)

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Rollout:
        return services.service_undo(
            service=service,
            user=user,
            to_revision=data["to_revision"],
            change_cause=data["change_cause"],
            recreate_confirmed=data["confirm_recreate"],
        )


class ServiceRollbackApi(QueueingApi):
    @extend_schema_serializer(component_name="RollbackRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=True)

    @queueing_schema("the engine's rollback to the previous spec", InputSerializer)
    def post(self, request: Request, service: str) -> Response:
        return super().post(request, service)

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Rollout:
        return services.service_rollback(
            service=service, user=user, change_cause=data["change_cause"]
        )


class ServiceReapplyApi(QueueingApi):
    @extend_schema_serializer(component_name="ReapplyRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=False)
        resume = serializers.BooleanField(default=False)

    @queueing_schema("re-apply our current revision over drift", InputSerializer)
    def post(self, request: Request, service: str) -> Response:
        return super().post(request, service)

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Rollout:
        return services.service_reapply(
            service=service,
            user=user,
            change_cause=data["change_cause"],
            resume_confirmed=data["resume"],
        )


class ActiveRolloutApi(ServiceOperationApi):
    """An operation on the service's rollout in flight (abort, promote): it
    answers 200 with that rollout; a retry with the same Idempotency-Key
    answers it again."""

    def post(self, request: Request, service: str) -> Response:
        found = get_service(service)
        check_scope(request, found)
        data = self.read_input(request)
        if isinstance(data, Response):
            return data
        user = self.user(request)
        key = idempotency.request_key(request)

        def perform() -> Rollout:
            rollout: Rollout = self.perform(found, user, data)
            return rollout

        try:
            if key is None:
                rollout, replayed = perform(), False
            else:
                rollout, replayed = idempotency.once(request, user, key, perform)
        except DjangoValidationError as error:
            return refusal(_django_messages(error))
        response = QueueingApi.answer(request, rollout, replayed)
        response.status_code = status.HTTP_200_OK
        return response


def active_schema(summary: str, request: Any) -> Callable[[F], F]:
    return extend_schema(
        summary=summary,
        request=request,
        parameters=[_IDEMPOTENCY],
        responses={200: RolloutResult, **_REFUSALS},
        tags=["rollouts (write)"],
    )


class RolloutAbortApi(ActiveRolloutApi):
    """End the service's rollout in flight (recorded with who and why), a held
    canary's too: the engine keeps its update waiting, so undo or roll back
    next (docs/analysis.md)."""

    @extend_schema_serializer(component_name="AbortRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=True)

    @active_schema("abort the service's rollout in flight", InputSerializer)
    def post(self, request: Request, service: str) -> Response:
        return super().post(request, service)

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Rollout:
        return services.rollout_abort(
            service=service, user=user, cause=data["change_cause"]
        )


class RolloutPromoteApi(ActiveRolloutApi):
    """Promote the service's held canary: the rest of the update goes ahead
    whatever the analysis says (the admin's button, `rollout promote`)."""

    @extend_schema_serializer(component_name="PromoteRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=True)

    @active_schema("promote the service's held canary", InputSerializer)
    def post(self, request: Request, service: str) -> Response:
        return super().post(request, service)

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Rollout:
        return services.rollout_promote(
            service=service, user=user, cause=data["change_cause"]
        )


class ServiceAdoptApi(ServiceOperationApi):
    """Take what runs as the desired spec: a new revision, nothing sent."""

    @extend_schema_serializer(component_name="AdoptRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=False)

    @extend_schema(
        summary="adopt what runs as the desired spec (a revision; no rollout)",
        request=InputSerializer,
        responses={201: RevisionSerializer, 409: BusySerializer, **_REFUSALS},
        tags=["rollouts (write)"],
    )
    def post(self, request: Request, service: str) -> Response:
        found = get_service(service)
        check_scope(request, found)
        data = self.read_input(request)
        if isinstance(data, Response):
            return data
        active = rollout_active_for(service=found)
        if active is not None:
            busy = Busy(active)
            body = {"detail": str(busy), "active_rollout": active.pk}
            return Response(body, status=status.HTTP_409_CONFLICT)
        try:
            revision = services.service_adopt(
                service=found,
                user=self.user(request),
                change_cause=data["change_cause"],
            )
        except DjangoValidationError as error:
            return refusal(_django_messages(error))
        return Response(RevisionSerializer(revision).data, status=201)
