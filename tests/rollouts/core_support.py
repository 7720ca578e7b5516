"""Fixtures of the engine-side tests: a fake engine running the workshop stack,
imported into the database with `service_sync`."""

import pytest

from rollouts.models import Service
from rollouts.services import service_sync
from tests.rollouts.fake_engine import FakeEngine


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
def worker(engine, db) -> Service:
    service_sync(client=engine.client())
    # These tests move the engine by hand; the stability window has tests of
    # its own (test_outcome.py).
    Service.objects.update(stable_for=0)
    return Service.objects.get(name="dockercoins_worker")
