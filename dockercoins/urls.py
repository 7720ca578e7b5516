from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("mining.urls")),
    path("api/rollouts/", include("rollouts.urls")),
]
