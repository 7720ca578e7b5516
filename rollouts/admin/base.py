"""Who may see and who may act in the rollouts admin."""

from django.contrib import admin

APPLY_PERMISSION = "rollouts.apply_rollout"


def can_apply(request) -> bool:
    return request.user.is_active and request.user.has_perm(APPLY_PERMISSION)


class StaffViewMixin:
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
