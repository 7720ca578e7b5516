"""The Service admin: desired spec in a form, live swarm state around it.

Saving goes through `requests.service_change` (desired fields + Revision +
queued Rollout in one transaction), called by the form once every field
parsed, so its refusals show on the form like any other error; the controller
applies it. The webui that
serves this admin has no Docker socket: everything "live" here is what the
controller last recorded in the database.
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from rollouts.admin.base import StaffAdmin, acting_user, can_apply
from rollouts.admin.display import (
    ago,
    operator_rollback,
    rollout_badge,
    task_rows,
    tasks_badge,
    update_state_badge,
)
from rollouts.admin.forms import ServiceChangeForm
from rollouts.admin.operation_views import OperationViewsMixin, list_action
from rollouts.admin.operations import OPERATIONS, queued_message
from rollouts.models import ACTIVE_STATES, Rollout, Service
from rollouts.records import describe, selectors
from rollouts.spec.drift import describe_drift, drift_lines, service_drift
from rollouts.spec.fields import FIELDS, policy_fields
from rollouts.spec.specs import short_image

RECENT_ROLLOUTS = 5
EVENTS_PER_ROLLOUT = 15
RECENT_REVISIONS = 10


@admin.register(Service)
class ServiceAdmin(OperationViewsMixin, StaffAdmin):
    form = ServiceChangeForm
    change_form_template = "admin/rollouts/service/change_form.html"
    list_display = (
        "name",
        "desired_image",
        "live_image_display",
        "tasks",
        "update_state",
        "progress",
        "active_rollout",
        "drift",
        "observed",
    )
    list_filter = ("stack", "mode", "live_update_state", "missing")
    search_fields = ("name", "short_name", "tag")
    readonly_fields = ("name", "stack", "swarm_id")
    actions = [list_action(op) for op in OPERATIONS.values()]
    fieldsets = [
        ("Service", {"fields": ("name", "stack", "swarm_id")}),
        ("Image", {"fields": ("image", "tag", "resume_confirmed")}),
        ("Scheduling", {"fields": ("mode", "replicas", "recreate_confirmed")}),
        (
            "Update policy",
            {
                "description": "How the engine replaces tasks when the spec changes.",
                "fields": [f.name for f in policy_fields("update")],
            },
        ),
        (
            "Rollback policy",
            {
                "description": "How the engine restores the previous spec, after "
                "a failed update (failure action rollback) or on “Roll back”.",
                "fields": [f.name for f in policy_fields("rollback")],
            },
        ),
        (
            "Progress deadline and stability",
            {"fields": ("progress_deadline", "deadline_action", "stable_for")},
        ),
        (
            "Canary and analysis",
            {
                "description": "Replace the canary tasks first and hold the rest "
                "while the new version is measured against the old one "
                "(Prometheus); promote on pass, roll back on failure, hold when "
                "inconclusive.",
                "fields": [
                    f.name for f in FIELDS if f.name.startswith(("canary", "analysis_"))
                ],
            },
        ),
        ("This change", {"fields": ("change_cause",)}),
    ]

    class Media:
        css = {"all": ["rollouts/admin.css"]}
        js = ["rollouts/live.js"]

    # --- permissions ------------------------------------------------------

    def has_change_permission(
        self, request: HttpRequest, obj: Service | None = None
    ) -> bool:
        return can_apply(request)

    def has_apply_permission(self, request: HttpRequest) -> bool:
        return can_apply(request)

    def get_fieldsets(self, request: HttpRequest, obj: Service | None = None) -> Any:
        if self.has_change_permission(request, obj):
            return self.fieldsets
        # A read-only page has nothing to confirm or explain.
        form_only = {"recreate_confirmed", "resume_confirmed", "change_cause"}
        return [
            (
                title,
                {**opts, "fields": [f for f in opts["fields"] if f not in form_only]},
            )
            for title, opts in self.fieldsets
            if any(f not in form_only for f in opts["fields"])
        ]

    # --- list -------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Service]:
        active = Rollout.objects.filter(state__in=ACTIVE_STATES).order_by("-id")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("rollouts", active, to_attr="active_rollouts"))
        )

    @admin.display(description="observed", ordering="synced_at")
    def observed(self, service: Service) -> str:
        when = ago(service.synced_at)
        return format_html('<span title="{}">{}</span>', service.synced_at or "", when)

    @admin.display(description="desired", ordering="tag")
    def desired_image(self, service: Service) -> str:
        return service.image_ref

    @admin.display(description="live", ordering="live_image")
    def live_image_display(self, service: Service) -> str:
        live = short_image(service.live_image)
        if not live:
            return "—"
        drift = "rollouts-drift" if live != service.image_ref else ""
        return format_html('<span class="{}">{}</span>', drift, live)

    @admin.display(description="drift")
    def drift(self, service: Service) -> str:
        # What runs vs what we last applied (rollouts.spec.drift).
        text = describe_drift(service_drift(service))
        if not text:
            return "—"
        return format_html(
            '<span class="rollouts-drift" title="{}">changed outside</span>', text
        )

    @admin.display(description="tasks")
    def tasks(self, service: Service) -> str:
        return tasks_badge(service)

    @admin.display(description="update", ordering="live_update_state")
    def update_state(self, service: Service) -> str:
        return update_state_badge(
            service.live_update_state,
            service.live_update_message,
            own_rollback=operator_rollback(service),
        )

    @admin.display(description="progress")
    def progress(self, service: Service) -> str:
        rollout = _active(service)
        if rollout is None or not rollout.tasks_total:
            return "—"
        return format_html(
            '<progress max="{}" value="{}"></progress> {} of {}',
            rollout.tasks_total,
            rollout.tasks_done,
            rollout.tasks_done,
            rollout.tasks_total,
        )

    @admin.display(description="rollout")
    def active_rollout(self, service: Service) -> str:
        rollout = _active(service)
        if rollout is None:
            return "—"
        url = reverse("admin:rollouts_rollout_change", args=[rollout.pk])
        return format_html(
            '<a href="{}">#{}</a> {}', url, rollout.pk, rollout_badge(rollout.state)
        )

    # --- change page ------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        custom = [
            path("<path:object_id>/live/", wrap(self.live_view), name=f"{name}_live"),
            *(
                path(
                    f"<path:object_id>/{slug}/",
                    wrap(self.operation_view),
                    {"slug": slug},
                    name=f"{name}_{slug}",
                )
                for slug in OPERATIONS
            ),
        ]
        return custom + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        service = self.get_object(request, object_id)
        if service is not None:
            extra_context.update(self.panel_context(request, service))
            extra_context["operations"] = OPERATIONS.values()
        return super().change_view(request, object_id, form_url, extra_context)

    def panel_context(self, request: HttpRequest, service: Service) -> dict[str, Any]:
        active = selectors.rollout_active_for(service=service)
        recent = list(
            service.rollouts.select_related("revision", "requested_by")[
                :RECENT_ROLLOUTS
            ]
        )
        for rollout in recent:
            newest = rollout.events.order_by("-at", "-id")[:EVENTS_PER_ROLLOUT]
            # For the template: shown with the rollout, not stored.
            rollout.recent_events = list(newest)[::-1]  # type: ignore[attr-defined]
            rollout.badge = rollout_badge(rollout.state)  # type: ignore[attr-defined]
        if active is not None:
            active.badge = rollout_badge(active.state)  # type: ignore[attr-defined]
        return {
            "service": service,
            "active": active,
            "rows": task_rows(service),
            "update_badge": update_state_badge(
                service.live_update_state,
                service.live_update_message,
                own_rollback=operator_rollback(service),
            ),
            "tasks_badge": tasks_badge(service),
            "nodes_down": describe.down_in_tasks(service.live_tasks),
            "live_image": short_image(service.live_image),
            # One line per field, in `rollout plan`'s words (rollouts.spec.drift).
            "drift": drift_lines(service_drift(service)),
            "observed": ago(service.synced_at),
            "recent_rollouts": recent,
            "revisions": service.revisions.select_related("created_by")[
                :RECENT_REVISIONS
            ],
            "can_apply": can_apply(request),
            "live_url": reverse("admin:rollouts_service_live", args=[service.pk]),
        }

    def live_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """The live panels as HTML fragments, for live.js to swap in."""
        service = self.get_object(request, object_id)
        if service is None or not self.has_view_permission(request, service):
            return JsonResponse({"detail": "Not found."}, status=404)
        context = self.panel_context(request, service)
        return JsonResponse(
            {
                "active": context["active"] is not None,
                "live": render_to_string(
                    "admin/rollouts/service/_live.html", context, request
                ),
                "history": render_to_string(
                    "admin/rollouts/service/_history.html", context, request
                ),
            }
        )

    # --- saving: the form made the request; nothing is saved here ----------

    def get_form(
        self,
        request: HttpRequest,
        obj: Service | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # Who makes the request, for ServiceChangeForm's call into
        # requests.service_change (a class of its own for each request).
        return type(form.__name__, (form,), {"user": acting_user(request)})

    def save_model(
        self, request: HttpRequest, obj: Service, form: Any, change: bool
    ) -> None:
        # Validation made the request (ServiceChangeForm._post_clean): the
        # revision and the queued rollout are written; `obj` is never saved.
        self.message_user(request, queued_message(form.queued), messages.SUCCESS)

    def response_change(self, request: HttpRequest, obj: Service) -> HttpResponse:
        # Stay on the page: its live panel shows the rollout progressing.
        return redirect(reverse("admin:rollouts_service_change", args=[obj.pk]))


def _active(service: Service) -> Rollout | None:
    active = getattr(service, "active_rollouts", None)
    if active is None:
        return selectors.rollout_active_for(service=service)
    return active[0] if active else None
