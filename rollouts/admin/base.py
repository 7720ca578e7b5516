"""Who may see and who may act in the rollouts admin."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.filters import SimpleListFilter
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

APPLY_PERMISSION = "rollouts.apply_rollout"


def can_apply(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.has_perm(APPLY_PERMISSION))


def acting_user(request: HttpRequest) -> User:
    """Who acts: admin views run for logged-in staff only, never anonymously."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def is_staff(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


# The query-string lookups our list filters and date hierarchies make. Django
# allows any lookup on a local field, and some reach the database unsupported
# (`?live_tasks__contains=x`: a JSONField lookup SQLite lacks, a 500); anything
# else is refused (DisallowedModelAdminLookup, a 400) before any query runs.
_FILTER_LOOKUPS = ("", "__exact", "__isnull", "__id__exact")
_DATE_LOOKUPS = ("__year", "__month", "__day")


class StaffAdmin(admin.ModelAdmin):
    """Every active staff user may look; rows are never added or deleted here.

    Services come from `rollout sync`, and revisions, rollouts and events are
    history: deleting any of them would falsify the record of who changed what.
    Lists filter by what `list_filter` and `date_hierarchy` declare only: any
    other lookup in the query string is a 400.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def lookup_allowed(
        self, lookup: str, value: str, request: HttpRequest | None = None
    ) -> bool:
        allowed: set[str] = set()
        for item in self.list_filter:
            if isinstance(item, type) and issubclass(item, SimpleListFilter):
                allowed.add(item.parameter_name or "")
                continue
            path = item[0] if isinstance(item, list | tuple) else item
            allowed.update(str(path) + suffix for suffix in _FILTER_LOOKUPS)
        if self.date_hierarchy:
            allowed.update(self.date_hierarchy + suffix for suffix in _DATE_LOOKUPS)
        return lookup in allowed and super().lookup_allowed(lookup, value, request)


class ReadOnlyAdmin(StaffAdmin):
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
