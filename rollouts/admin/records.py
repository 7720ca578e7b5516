"""Read-only admins for the history: revisions, rollouts, their events, images."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from rollouts.admin.analysis_chart import analysis_svg, verdict
from rollouts.admin.base import ReadOnlyAdmin, is_staff
from rollouts.admin.display import rollout_badge, task_rows
from rollouts.models import KnownImage, Revision, Rollout, RolloutEvent
from rollouts.records.describe import describe_failures


@admin.register(Revision)
class RevisionAdmin(ReadOnlyAdmin):
    list_display = (
        "service",
        "number",
        "image_ref",
        "created_by",
        "created_at",
        "change_cause",
    )
    list_filter = ("service",)
    search_fields = ("service__name", "change_cause")
    list_select_related = ("service", "created_by")
    fields = (
        "service",
        "number",
        "created_by",
        "created_at",
        "change_cause",
        "spec_json",
        "image_id",
        "image_digest",
    )

    @admin.display(description="image")
    def image_ref(self, revision: Revision) -> str:
        return f"{revision.spec.get('image')}:{revision.spec.get('tag')}"

    @admin.display(description="spec")
    def spec_json(self, revision: Revision) -> str:
        return format_html("<pre>{}</pre>", json.dumps(revision.spec, indent=2))


class RolloutEventInline(admin.TabularInline):
    model = RolloutEvent
    fields = ("at", "kind", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)


@admin.register(Rollout)
class RolloutAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "service",
        "kind",
        "state_badge",
        "progress",
        "requested_by",
        "requested_at",
        "finished_at",
    )
    list_display_links = ("id",)
    list_filter = ("state", "kind", "service")
    list_select_related = ("service", "requested_by")
    search_fields = ("service__name", "reason")
    date_hierarchy = "requested_at"
    fields = (
        "service",
        "revision",
        "kind",
        "state_badge",
        "change_cause",
        "reason",
        "analysis",
        "failed_tasks",
        "aborted_by",
        "update_state",
        "progress",
        "recreate_confirmed",
        "requested_by",
        "requested_at",
        "started_at",
        "applied_at",
        "finished_at",
        "lease_owner",
        "lease_until",
        "task_table",
    )
    inlines = [RolloutEventInline]

    class Media:
        css = {"all": ["rollouts/admin.css"]}

    @admin.display(description="state", ordering="state")
    def state_badge(self, rollout: Rollout) -> SafeString:
        return rollout_badge(rollout.state)

    @admin.display(description="analysis")
    def analysis(self, rollout: Rollout) -> SafeString | str:
        # The picture says what happened; each measurement's message is its
        # tooltip, and the events below keep the whole story.
        measurements = list(rollout.measurements.order_by("at", "id"))
        if not measurements:
            return "— (no measurement: no canary step or no analysis)"
        result = verdict(rollout, [m.phase for m in measurements])
        return analysis_svg(measurements, result)

    @admin.display(description="failed new tasks")
    def failed_tasks(self, rollout: Rollout) -> str:
        # As the controller saw them, kept after the engine forgets the tasks.
        text = describe_failures(rollout.failures or [])
        return text or "—"

    @admin.display(description="progress")
    def progress(self, rollout: Rollout) -> str:
        if not rollout.tasks_total:
            return "—"
        return f"{rollout.tasks_done} of {rollout.tasks_total} tasks"

    @admin.display(description="tasks now")
    def task_table(self, rollout: Rollout) -> SafeString:
        service = rollout.service
        change = reverse("admin:rollouts_service_change", args=[service.pk])
        table = render_to_string(
            "admin/rollouts/_task_table.html", {"rows": task_rows(service)}
        )
        return format_html(
            '{}<p><a href="{}">Live state of {}</a></p>', table, change, service.name
        )


@admin.register(RolloutEvent)
class RolloutEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "rollout", "kind", "message")
    list_filter = ("kind", "rollout__service")
    list_select_related = ("rollout__service",)
    search_fields = ("message",)


@admin.register(KnownImage)
class KnownImageAdmin(ReadOnlyAdmin):
    list_display = ("reference", "image_id", "digest", "seen_at")
    search_fields = ("reference",)
