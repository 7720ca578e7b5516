"""/api/rollouts/services/{service}/<action>/: the write API (operations.views),
under the read API's prefix and namespace."""

from django.urls import path

from operations import views

_ACTIONS = {
    "rollouts": views.ServiceChangeApi,
    "scale": views.ServiceScaleApi,
    "undo": views.ServiceUndoApi,
    "rollback": views.ServiceRollbackApi,
    "reapply": views.ServiceReapplyApi,
    "abort": views.RolloutAbortApi,
    "promote": views.RolloutPromoteApi,
    "adopt": views.ServiceAdoptApi,
}

app_name = "operations"
urlpatterns = [
    path(f"services/<str:service>/{action}/", view.as_view(), name=f"service-{action}")
    for action, view in _ACTIONS.items()
]
