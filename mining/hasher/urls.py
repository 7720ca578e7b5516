"""URLconf of the hasher role (ROOT_URLCONF when DOCKERCOINS_ROLE=hasher)."""

from django.urls import path

from mining.hasher import views

urlpatterns = [path("", views.index, name="hasher-index")]
