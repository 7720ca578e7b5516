"""Every admin list filters by what it declares, and nothing else.

Django's admin lets a query string use any lookup on a model's own fields
(`lookup_allowed`), so `/admin/auth/user/?username__regex=[` reached the
database and came back a 500, to any staff user who could view the list
(issue 16). Here every registered ModelAdmin, Django's and django-axes' own
included, allows only the parameters its `list_filter` and `date_hierarchy`
produce; anything else is Django's DisallowedModelAdminLookup, a 400. Values
a declared filter cannot take stay the admin's own `?e=1`.
"""

import types
from typing import Any

from django.contrib import admin
from django.contrib.admin import ListFilter

# What Django's field list filters put in the query string: boolean, choices
# and all-values (__exact, __isnull), related (__id__exact), dates (__gte,
# __lt), and a plain `field=value`.
FILTER_SUFFIXES = ("", "__exact", "__isnull", "__id__exact", "__gte", "__lt")
DATE_SUFFIXES = ("__year", "__month", "__day")


def declared_lookups(model_admin: admin.ModelAdmin) -> set[str]:
    """The query-string lookups this admin's filters and date drill-down use."""
    allowed: set[str] = set()
    for item in model_admin.list_filter:
        if isinstance(item, type) and issubclass(item, ListFilter):
            allowed.add(getattr(item, "parameter_name", "") or "")
            continue
        path = item[0] if isinstance(item, list | tuple) else item
        allowed.update(str(path) + suffix for suffix in FILTER_SUFFIXES)
    if model_admin.date_hierarchy:
        allowed.update(model_admin.date_hierarchy + s for s in DATE_SUFFIXES)
    return allowed


def only_declared_lookups(site: admin.AdminSite = admin.site) -> None:
    """Narrow lookup_allowed on every ModelAdmin registered on `site`."""
    for model_admin in site._registry.values():
        if getattr(model_admin, "_only_declared_lookups", False):
            continue
        original = model_admin.lookup_allowed

        def lookup_allowed(
            self: admin.ModelAdmin,
            lookup: str,
            value: str,
            request: Any = None,
            _original: Any = original,
        ) -> bool:
            return lookup in declared_lookups(self) and _original(
                lookup, value, request
            )

        model_admin.lookup_allowed = types.MethodType(lookup_allowed, model_admin)  # type: ignore[method-assign]
        model_admin._only_declared_lookups = True  # type: ignore[attr-defined]
