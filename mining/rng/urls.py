"""URLconf of the rng role (ROOT_URLCONF when DOCKERCOINS_ROLE=rng)."""

from django.urls import path

from mining.rng import views

urlpatterns = [
    path("", views.banner, name="rng-banner"),
    path("<str:count>", views.random_bytes, name="rng-bytes"),
]
