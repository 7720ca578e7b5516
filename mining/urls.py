from django.urls import include, path

from mining import views

app_name = "mining"
urlpatterns = [
    path("", views.index, name="index"),
    path("json", views.classic_json, name="json"),
    path("api/", include("mining.api.urls")),
]
