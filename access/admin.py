"""API tokens in the admin: made for a user, shown once, revoked by deleting.

Superusers manage every token (a token acts as its user, so making one for
somebody is as strong as knowing their password).
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from access.models import ApiToken
from access.tokens import (
    describe_scope,
    scope_stack_parse,
    token_create,
    token_revoke,
)
from rollouts.models import Service

LIFETIMES = [
    ("", "never expires"),
    ("1", "1 day"),
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
]


class TokenCreateForm(forms.ModelForm):
    lifetime = forms.ChoiceField(choices=LIFETIMES, required=False)

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scope_stack", "scope_services"]

    def clean_scope_stack(self) -> str:
        try:
            return scope_stack_parse(self.cleaned_data.get("scope_stack") or "")
        except ValidationError as error:
            raise ValidationError(error.messages) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        user = data.get("user")
        if isinstance(user, User) and not user.is_active:
            raise ValidationError({"user": f"{user.username} is not active"})
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["token_key", "user", "name", "created", "expiry", "scope"]
    list_filter = ["user"]
    search_fields = ["token_key", "name", "user__username"]
    filter_horizontal = ["scope_services"]
    actions = ["revoke"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    has_add_permission = has_view_permission
    has_delete_permission = has_view_permission

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token's user and scope are fixed: revoke and make anew

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = TokenCreateForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["user", "name", "lifetime", "scope_stack", "scope_services"]
        return ["token_key", "user", "name", "created", "expiry", "scope"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.get_fields(request, obj)

    @admin.display(description="scope")
    def scope(self, token: ApiToken) -> str:
        return describe_scope(token)

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: Any, change: bool
    ) -> None:
        days = form.cleaned_data.get("lifetime")
        token, secret = token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data.get("name", ""),
            expires_in=timedelta(days=int(days)) if days else None,
            scope_stack=form.cleaned_data.get("scope_stack", ""),
            scope_services=form.cleaned_data.get("scope_services")
            or Service.objects.none(),
        )
        # The admin's own answer ("added …", the redirect) names `obj`.
        obj.__dict__.update(token.__dict__)
        # Shown this once: only its digest is stored.
        self.message_user(
            request,
            f"New API token for {token.user}: {secret} — copy it now, it is "
            "not shown again. Send it as `Authorization: Bearer <token>`.",
            messages.WARNING,
        )

    def save_related(
        self, request: HttpRequest, form: Any, formsets: Any, change: bool
    ) -> None:
        pass  # token_create set the scope

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        token_revoke(token=obj)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = 0
        for token in queryset:
            token_revoke(token=token)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
