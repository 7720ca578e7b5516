"""Helpers of the real-swarm test modules: one database per module, the
`rollout` command as an operator runs it, and what the engine runs."""

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import setup_databases, teardown_databases

from deploy.stacks import Stack
from rollouts.engine.client import SwarmClient
from rollouts.engine.sync import service_sync
from rollouts.models import KnownImage, Rollout, Service


@contextmanager
def module_database(stack: Stack, django_db_blocker) -> Iterator[None]:
    """One database for a whole module, outside per-test transactions: rows
    outlive each test, as they do for an operator; emptied at the end.

    pytest-django creates the test database only when the session has tests
    marked django_db; alone, a swarm module creates it (never the real one).
    """
    with django_db_blocker.unblock():
        created = None
        if not connection.settings_dict["NAME"].startswith("file:memorydb"):
            # Django reads `aliases` with `in` only; its stubs ask for a Mapping.
            created = setup_databases(
                verbosity=0,
                interactive=False,
                aliases={"default"},  # type: ignore[arg-type]
            )
        previous = settings.STACK_NAME
        settings.STACK_NAME = stack.name
        service_sync(client=SwarmClient())
        yield
        settings.STACK_NAME = previous
        Service.objects.all().delete()
        KnownImage.objects.all().delete()
        get_user_model().objects.filter(username="operator").delete()
        if created is not None:
            teardown_databases(created, verbosity=0)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rollout", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        run(*args)
    return str(raised.value)


def service(stack: Stack, short: str) -> Service:
    service_sync(client=SwarmClient())
    return Service.objects.get(name=stack.service(short))


def latest_rollout(svc: Service) -> Rollout:
    rollout = svc.rollouts.order_by("-pk").first()
    assert rollout is not None, f"{svc.name} has no rollout"
    return rollout


def running_images(docker_client, name: str) -> list[str]:
    tasks = docker_client.services.get(name).tasks(filters={"desired-state": "running"})
    return sorted(
        t["Spec"]["ContainerSpec"]["Image"].split("@")[0]
        for t in tasks
        if t["Status"]["State"] == "running"
    )
