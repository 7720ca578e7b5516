"""Admin views for the rollout actions: a page per service, and list actions."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from rollouts.admin.base import acting_user
from rollouts.admin.forms import add_validation_errors
from rollouts.admin.operations import OPERATIONS, Operation, queued_message
from rollouts.models import Service
from rollouts.records import requests
from rollouts.spec.specs import short_image

TEMPLATE = "admin/rollouts/service/operation.html"

if TYPE_CHECKING:
    _ServiceAdmin = admin.ModelAdmin[Service]
else:
    _ServiceAdmin = object


class OperationViewsMixin(_ServiceAdmin):
    """Mixed into ServiceAdmin; `has_apply_permission` guards every action."""

    def has_apply_permission(self, request: HttpRequest) -> bool:
        raise NotImplementedError  # ServiceAdmin's

    def operation_view(
        self, request: HttpRequest, object_id: str, slug: str
    ) -> HttpResponse:
        op = OPERATIONS[slug]
        service = self.get_object(request, unquote(object_id))
        if service is None:
            # Django's own "doesn't exist" message and redirect (not in its stubs).
            missing: HttpResponse = self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.opts, object_id
            )
            return missing
        if not self.has_apply_permission(request):
            raise PermissionDenied
        back = reverse("admin:rollouts_service_change", args=[service.pk])
        if not op.needs_active:
            try:  # the request's own busy rule, asked before the form is shown
                requests.refuse_if_busy(service)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return redirect(back)
        initial = (
            {"to_revision": request.GET["revision"]}
            if "revision" in request.GET
            else {}
        )
        data = request.POST if request.method == "POST" else None
        form = op.form(data, service=service, initial=initial)
        if form.is_bound and form.is_valid():
            try:
                rollout = op.run(service, acting_user(request), form.cleaned_data)
            except ValidationError as error:
                add_validation_errors(form, error)
            else:
                self.message_user(request, queued_message(rollout), messages.SUCCESS)
                return redirect(back)
        return self._operation_page(request, op, [service], form, bulk=False)

    def _operation_page(
        self,
        request: HttpRequest,
        op: Operation,
        chosen: list[Service],
        form: Any,
        *,
        bulk: bool,
    ) -> HttpResponse:
        for service in chosen:
            service.live_short = short_image(service.live_image)  # type: ignore[attr-defined]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{op.title}: {', '.join(s.name for s in chosen)}",
            "op": op,
            "services": chosen,
            "form": form,
            "bulk": bulk,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        if not bulk:
            context["original"] = chosen[0]
        return TemplateResponse(request, TEMPLATE, context)

    def _bulk_operation(
        self, request: HttpRequest, queryset: QuerySet[Service], slug: str
    ) -> HttpResponse | None:
        """A list action: one service goes to its own page, several share a form."""
        op = OPERATIONS[slug]
        chosen = list(queryset)
        if len(chosen) == 1:
            return redirect(
                reverse(f"admin:rollouts_service_{slug}", args=[chosen[0].pk])
            )
        if not op.many:
            self.message_user(
                request,
                f"{op.title} works on one service at a time; select just one.",
                messages.ERROR,
            )
            return None
        confirmed = "post" in request.POST
        form = op.form(request.POST if confirmed else None, service=None)
        if confirmed and form.is_valid():
            for service in chosen:
                self._run_and_report(request, op, service, form.cleaned_data)
            return None
        return self._operation_page(request, op, chosen, form, bulk=True)

    def _run_and_report(
        self,
        request: HttpRequest,
        op: Operation,
        service: Service,
        data: dict[str, Any],
    ) -> None:
        try:
            rollout = op.run(service, acting_user(request), data)
        except ValidationError as error:
            text = " ".join(error.messages)
            if not text.startswith(service.name):
                text = f"{service.name}: {text}"
            self.message_user(request, text, messages.ERROR)
        else:
            self.message_user(request, queued_message(rollout), messages.SUCCESS)


def list_action(op: Operation) -> Callable[..., HttpResponse | None]:
    """The changelist action of `op` (its name `op.action`, its line `op.menu`):
    one selected service goes to the action's page, several share one form."""

    def action(
        modeladmin: OperationViewsMixin,
        request: HttpRequest,
        queryset: QuerySet[Service],
    ) -> HttpResponse | None:
        return modeladmin._bulk_operation(request, queryset, op.slug)

    action.__name__ = action.__qualname__ = op.action
    return admin.action(description=op.menu, permissions=["apply"])(action)
