"""Fixtures shared by the rollouts tests; each name means one thing everywhere.

- `engine`: a fake engine (tests/rollouts/fake_engine.py) running the workshop
  stack: dockercoins_worker (2 replicas), dockercoins_rng, and a service of
  another stack, with the images dockercoins:1.0, 1.1 and bugged.
- `worker`: that engine's dockercoins_worker, imported with `service_sync`.
- `operator`: a test client logged in as staff with the apply permission.
"""

import pytest
from django.test import Client

from rollouts.engine.sync import service_sync
from rollouts.models import Service
from tests.rollouts.admin_support import make_staff
from tests.rollouts.fake_engine import FakeEngine


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """pytest-django's admin_user has a password; hash it cheaply (tests only)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def engine() -> FakeEngine:
    engine = FakeEngine()
    for tag in ("1.0", "1.1", "bugged"):
        engine.add_image(f"dockercoins:{tag}")
    engine.add_service("dockercoins_worker", replicas=2)
    engine.add_service("dockercoins_rng", replicas=1)
    engine.add_service("other_worker", stack="other")
    return engine


@pytest.fixture
def worker(engine: FakeEngine, db: None) -> Service:
    service_sync(client=engine.client())
    # These tests move the engine by hand; the stability window has tests of
    # its own (test_outcome.py).
    Service.objects.update(stable_for=0)
    return Service.objects.get(name="dockercoins_worker")


@pytest.fixture
def operator(client: Client, django_user_model) -> Client:
    user = make_staff(django_user_model, "operator", can_apply=True)
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client
