"""/api/rollouts/: read-only, staff only (see rollouts.api.views)."""

from django.urls import path

from rollouts.api import views

app_name = "rollouts"
urlpatterns = [
    path("services/", views.ServiceListApi.as_view(), name="service-list"),
    # str, not int: an unknown or malformed id must answer 404 *JSON* from
    # the view, not Django's HTML 404 from the resolver.
    path(
        "services/<str:service>/",
        views.ServiceDetailApi.as_view(),
        name="service-detail",
    ),
    path(
        "services/<str:service>/revisions/",
        views.ServiceRevisionsApi.as_view(),
        name="service-revisions",
    ),
    path("rollouts/", views.RolloutListApi.as_view(), name="rollout-list"),
    path(
        "rollouts/<str:rollout>/",
        views.RolloutDetailApi.as_view(),
        name="rollout-detail",
    ),
]
