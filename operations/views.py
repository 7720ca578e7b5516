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
from typing import Any, ClassVar

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from operations import idempotency
from operations.permissions import CanApplyRollouts, check_scope
from operations.schema import REFUSALS, on_active, operation, queueing
from operations.serializers import (
    BusySerializer,
    ChangeOptions,
    DesiredChangeSerializer,
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


class ServiceOperationApi(APIView):
    """POST on a service's sub-path: find the service, check the token's
    scope, validate the body (`InputSerializer`), run `perform`."""

    permission_classes = [CanApplyRollouts]
    parser_classes = [JSONParser]
    InputSerializer: ClassVar[type[serializers.Serializer]]
    # The rollouts.records.requests function it calls (the admin's, the
    # command's), given the body's fields as keyword arguments.
    request_function: ClassVar[Callable[..., Any]]
    renamed: ClassVar[dict[str, str]] = {}  # body field -> its argument

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Any:
        names = {**_SERVICE_NAMES, **self.renamed}
        arguments = {names.get(k, k): v for k, v in data.items()}
        return type(self).request_function(service=service, user=user, **arguments)

    def prepare(
        self, request: Request, service: str
    ) -> tuple[Service, dict[str, Any]] | Response:
        """The service and the validated body, or the refusal to answer."""
        found = get_service(service)
        check_scope(request, found)
        data = self.read_input(request)
        if isinstance(data, Response):
            return data
        return found, data

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

    def run_once(
        self, request: Request, service: Service, data: dict[str, Any], *, busy: bool
    ) -> tuple[Rollout, bool]:
        """`perform`, once per Idempotency-Key: (its rollout, whether it was a
        replay). With `busy`, raises Busy while the service has a rollout in
        flight; raises the service's ValidationError."""
        user = self.user(request)

        def perform() -> Rollout:
            active = rollout_active_for(service=service) if busy else None
            if active is not None:
                raise Busy(active)
            rollout: Rollout = self.perform(service, user, data)
            return rollout

        key = idempotency.request_key(request)
        if key is None:
            return perform(), False
        return idempotency.once(request, user, key, perform)

    def paused(self, error: DjangoValidationError) -> Response:
        """409: the service's failed update is paused, and this request would
        resume it; how to resume on purpose when the operation can."""
        detail = "; ".join(error.messages)
        body: dict[str, Any] = {"detail": detail, "paused_update": True}
        if "resume" in self.InputSerializer().fields:
            body["detail"] += ' (send "resume": true)'
            body["resume_with"] = {"resume": True}
        return Response(body, status=status.HTTP_409_CONFLICT)

    def refused(self, error: Exception) -> Response:
        """The answer to a refusal of the service's rules."""
        if isinstance(error, Busy):
            body = {"detail": str(error), "active_rollout": error.active.pk}
            return Response(body, status=status.HTTP_409_CONFLICT)
        assert isinstance(error, DjangoValidationError)
        if _paused(error):
            return self.paused(error)
        return refusal(_django_messages(error))

    @staticmethod
    def answer(
        request: Request, rollout: Rollout, replayed: bool, code: int | None = None
    ) -> Response:
        headers = {"Location": reverse("rollouts:rollout-detail", args=[rollout.pk])}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        data = RolloutResult(rollout, context={"request": request}).data
        return Response(data, status=code or status_for(rollout), headers=headers)


class QueueingApi(ServiceOperationApi):
    """An operation that queues a rollout: `?wait=N`, `Idempotency-Key`, and
    the rollout's end as the status code (operations.waiting)."""

    def post(self, request: Request, service: str) -> Response:
        wait = WaitSerializer(data=request.query_params)
        prepared = self.prepare(request, service)
        if isinstance(prepared, Response):
            return prepared
        if not wait.is_valid():
            return refusal(_messages(wait.errors))
        try:
            rollout, replayed = self.run_once(request, *prepared, busy=True)
        except (Busy, DjangoValidationError) as error:
            return self.refused(error)
        rollout = rollout_wait(rollout, seconds=wait.validated_data["wait"])
        return self.answer(request, rollout, replayed)


class ActiveRolloutApi(ServiceOperationApi):
    """An operation on the service's rollout in flight (abort, promote): it
    answers 200 with that rollout; a retry with the same Idempotency-Key
    answers it again."""

    def post(self, request: Request, service: str) -> Response:
        prepared = self.prepare(request, service)
        if isinstance(prepared, Response):
            return prepared
        try:
            rollout, replayed = self.run_once(request, *prepared, busy=False)
        except DjangoValidationError as error:
            return self.refused(error)
        return self.answer(request, rollout, replayed, status.HTTP_200_OK)


# The request functions' names for fields the API calls otherwise.
_SERVICE_NAMES = {
    "confirm_recreate": "recreate_confirmed",
    "resume": "resume_confirmed",
}
_API_NAMES = {name: field for field, name in _SERVICE_NAMES.items()}


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


@queueing("change desired fields, queue a rollout", DesiredChangeSerializer)
class ServiceChangeApi(QueueingApi):
    """Change desired fields (only those sent) as a new revision, and queue it."""

    InputSerializer = ChangeOptions
    request_function = staticmethod(services.service_change)

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

    def perform(self, service: Service, user: User, data: dict[str, Any]) -> Any:
        desired = data.pop("desired")
        return super().perform(
            service, user, {**data, "carry": list(desired), **desired}
        )


@queueing("scale a replicated service")
class ServiceScaleApi(QueueingApi):
    @extend_schema_serializer(component_name="ScaleRequest")
    class InputSerializer(serializers.Serializer):
        replicas = StrictIntegerField(help_text="tasks wanted")
        change_cause = change_cause(required=False)
        resume = serializers.BooleanField(default=False)

    request_function = staticmethod(services.service_scale)


@queueing("undo to an earlier revision")
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

    request_function = staticmethod(services.service_undo)


@queueing("the engine's rollback to the previous spec")
class ServiceRollbackApi(QueueingApi):
    @extend_schema_serializer(component_name="RollbackRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=True)

    request_function = staticmethod(services.service_rollback)


@queueing("re-apply our current revision over drift")
class ServiceReapplyApi(QueueingApi):
    @extend_schema_serializer(component_name="ReapplyRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=False)
        resume = serializers.BooleanField(default=False)

    request_function = staticmethod(services.service_reapply)


@on_active("abort the service's rollout in flight")
class RolloutAbortApi(ActiveRolloutApi):
    """End the service's rollout in flight (recorded with who and why), a held
    canary's too: the engine keeps its update waiting, so undo or roll back
    next (docs/analysis.md)."""

    @extend_schema_serializer(component_name="AbortRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=True)

    request_function = staticmethod(services.rollout_abort)
    renamed = {"change_cause": "cause"}


@on_active("promote the service's held canary")
class RolloutPromoteApi(ActiveRolloutApi):
    """Promote the service's held canary: the rest of the update goes ahead
    whatever the analysis says (the admin's button, `rollout promote`)."""

    @extend_schema_serializer(component_name="PromoteRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=True)

    request_function = staticmethod(services.rollout_promote)
    renamed = {"change_cause": "cause"}


@operation(
    "adopt what runs as the desired spec (a revision; no rollout)",
    responses={201: RevisionSerializer, 409: BusySerializer, **REFUSALS},
    parameters=(),
)
class ServiceAdoptApi(ServiceOperationApi):
    """Take what runs as the desired spec: a new revision, nothing sent."""

    @extend_schema_serializer(component_name="AdoptRequest")
    class InputSerializer(serializers.Serializer):
        change_cause = change_cause(required=False)

    def post(self, request: Request, service: str) -> Response:
        prepared = self.prepare(request, service)
        if isinstance(prepared, Response):
            return prepared
        found, data = prepared
        try:
            active = rollout_active_for(service=found)
            if active is not None:
                raise Busy(active)
            revision = services.service_adopt(
                service=found,
                user=self.user(request),
                change_cause=data["change_cause"],
            )
        except (Busy, DjangoValidationError) as error:
            return self.refused(error)
        return Response(RevisionSerializer(revision).data, status=201)
