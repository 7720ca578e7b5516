"""Subscriptions and the delivery log in the admin (superusers: a
subscription's secret signs what receivers trust)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from webhooks.models import (
    Attempt,
    Delivery,
    DeliveryState,
    DriftSeen,
    EventType,
    Subscription,
)
from webhooks.targets import validate_target


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        validators=[validate_target],
        help_text="http(s), no credentials; redirects are never followed",
    )
    events = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none chosen: every event",
    )

    class Meta:
        model = Subscription
        fields = [
            "name",
            "url",
            "events",
            "stacks",
            "services",
            "slack",
            "secret",
            "active",
        ]


class SuperuserOnly(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)


@admin.register(Subscription)
class SubscriptionAdmin(SuperuserOnly):
    form = SubscriptionForm
    list_display = ["name", "url", "active", "slack", "created_at"]
    filter_horizontal = ["services"]


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["at", "status_code", "answer", "error", "seconds"]
    readonly_fields = ("at", "status_code", "answer", "error", "seconds")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(SuperuserOnly):
    list_display = [
        "message_id",
        "event_type",
        "subscription",
        "rollout",
        "state",
        "attempts",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["state", "event_type", "subscription"]
    inlines = [AttemptInline]
    actions = ["retry_now"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    @admin.action(description="Retry now (same webhook-id)")
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        count = queryset.exclude(state=DeliveryState.DELIVERED).update(
            state=DeliveryState.PENDING, next_attempt_at=timezone.now()
        )
        self.message_user(request, f"{count} delivery(ies) queued again.")


@admin.register(DriftSeen)
class DriftSeenAdmin(SuperuserOnly):
    """Each appearance of drift told to subscribers (read-only)."""

    list_display = ["service", "description", "seen_at", "cleared_at"]
    list_filter = ["service"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in DriftSeen._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False
