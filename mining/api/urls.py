from django.urls import path

from mining.api import views

app_name = "api"
urlpatterns = [
    path("stats/", views.StatsApi.as_view(), name="stats"),
    path("totals/", views.TotalsApi.as_view(), name="totals"),
    path("rate/", views.RateApi.as_view(), name="rate"),
    path("series/", views.SeriesApi.as_view(), name="series"),
    path("workers/", views.WorkersApi.as_view(), name="workers"),
    path("latency/", views.LatencyApi.as_view(), name="latency"),
    path("marks/", views.MarksApi.as_view(), name="marks"),
    path("versions/", views.VersionsApi.as_view(), name="versions"),
]
