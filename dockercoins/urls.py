from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView

from dockercoins import errors
from dockercoins.api import ApiDocs, ApiRoot

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", ApiRoot.as_view(), name="api-root"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        ApiDocs.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("", include("mining.urls")),
    path("api/rollouts/", include("rollouts.urls")),
    path("api/rollouts/", include("operations.urls")),
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL no route matches: JSON under /api/ like every API answer."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"Not found: {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found
handler500 = errors.server_error
