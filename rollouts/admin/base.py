"""Who may see and who may act in the rollouts admin."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.filters import SimpleListFilter
from django.http import HttpRequest

APPLY_PERMISSION = "rollouts.apply_rollout"


def can_apply(request) -> bool:
    return request.user.is_active and request.user.has_perm(APPLY_PERMISSION)


# The query-string lookups our list filters and date hierarchies make. Django
# allows any lookup on a local field, and some reach the database unsupported
# (`?live_tasks__contains=x`: a JSONField lookup SQLite lacks, a 500); anything
# else is refused (DisallowedModelAdminLookup, a 400) before any query runs.
_FILTER_LOOKUPS = ("", "__exact", "__isnull", "__id__exact")
_DATE_LOOKUPS = ("__year", "__month", "__day")


class DeclaredLookupsOnly:
    """Changelist filtering by what `list_filter` and `date_hierarchy` declare
    only; every other lookup in the query string is a 400 (issue 9)."""

    def lookup_allowed(
        self, lookup: str, value: Any, request: HttpRequest | None = None
    ) -> bool:
        allowed: set[str] = set()
        for item in self.get_list_filter(request):  # type: ignore[attr-defined]
            if isinstance(item, type) and issubclass(item, SimpleListFilter):
                allowed.add(item.parameter_name or "")
                continue
            path = item[0] if isinstance(item, list | tuple) else item
            allowed.update(path + suffix for suffix in _FILTER_LOOKUPS)
        hierarchy = getattr(self, "date_hierarchy", None)
        if hierarchy:
            allowed.update(hierarchy + suffix for suffix in _DATE_LOOKUPS)
        if lookup not in allowed:
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]


class StaffViewMixin(DeclaredLookupsOnly):
    """Every active staff user may look; rows are never added or deleted here.

    Services come from `rollout sync`, and revisions, rollouts and events are
    history: deleting any of them would falsify the record of who changed what.
    """

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(StaffViewMixin, admin.ModelAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False
