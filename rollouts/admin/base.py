"""Who may see and who may act in the rollouts admin."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.filters import SimpleListFilter
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from rollouts.spec.fields import ParseError, parse_id

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

    Ids, in a page's URL, in a list action's selection or in an id filter, are
    read by the one id parser of every face (rollouts.spec.fields.parse_id,
    ASCII digits, as the API reads them): "abc", "1.0", "１" or 30 digits are
    "no such object", a message, or the list's "?e=1", never a 500 nor another row.
    """

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        if from_field is None:
            try:
                parse_id(object_id)
            except ParseError:
                return None  # Django's "doesn't exist" page and redirect
        return super().get_object(request, object_id, from_field)

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Model]
    ) -> HttpResponse | None:
        try:
            for selected in request.POST.getlist(ACTION_CHECKBOX_NAME):
                parse_id(selected)
        except ParseError as error:
            # None: Django redirects back to the list, which shows the message.
            self.message_user(request, f"Nothing was done: {error}", messages.ERROR)
            return None
        return super().response_action(request, queryset)

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
        if lookup.endswith("id__exact") and not _is_id(value):
            # The admin's own "?e=1" (a bad value), as for a bad date or choice.
            raise IncorrectLookupParameters(f"{value!r} is not an id")
        return lookup in allowed and super().lookup_allowed(lookup, value, request)


def _is_id(value: object) -> bool:
    try:
        parse_id(value)
    except ParseError:
        return False
    return True


class ReadOnlyAdmin(StaffAdmin):
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
