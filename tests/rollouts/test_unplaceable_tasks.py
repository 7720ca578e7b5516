"""Against the fake engine: a task the scheduler cannot place is
named at once, with the engine's reason, in the rollout's events, `rollout
status` and the stored task table; the progress deadline then ends the rollout
as failed with that reason."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command

from rollouts.control import driver
from rollouts.models import Rollout, RolloutState, Service
from rollouts.records import requests as services

pytestmark = pytest.mark.django_db

WHY = "no suitable node (max replicas per node limit exceed)"


@pytest.fixture
def scaled(worker, engine) -> Rollout:
    rollout = services.service_scale(service=worker, user=None, replicas=3)
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    engine.tick()
    svc = engine.service("dockercoins_worker")
    engine.add_task(svc, 3, "pending", err=WHY)
    task = engine.task_list[-1]
    task["NodeID"] = ""  # the scheduler found none
    return rollout


def step(rollout: Rollout, engine) -> bool:
    return driver.rollout_watch_step(rollout=rollout, client=engine.client())


def test_it_names_a_task_the_scheduler_cannot_place_at_the_first_look(scaled, engine):
    assert not step(scaled, engine)

    message = scaled.events.get(kind="unplaced").message
    assert message.startswith("1 task(s) cannot be placed on any node: ")
    assert f"dockercoins_worker.3 pending ({WHY})" in message
    assert not step(scaled, engine)
    assert scaled.events.filter(kind="unplaced").count() == 1  # said once


def test_status_and_the_task_table_show_the_engines_reason(scaled, engine, monkeypatch):
    step(scaled, engine)
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )
    out = io.StringIO()
    call_command("rollout", "status", stdout=out, stderr=io.StringIO())

    text = out.getvalue()
    assert f"dockercoins_worker: 1 task(s) cannot be placed on any node: 3 ({WHY})" in (
        text
    )
    assert f"pending: {WHY}" in text
    slot3 = [
        g
        for g in Service.objects.get(pk=scaled.service_id).live_tasks
        if g["slot"] == "3"
    ][0]
    assert slot3["tasks"][0]["error"] == WHY  # the admin's task table shows it


def test_the_deadline_ends_it_as_failed_with_the_schedulers_reason(scaled, engine):
    step(scaled, engine)
    Rollout.objects.filter(pk=scaled.pk).update(
        started_at=scaled.started_at - timedelta(hours=1)
    )

    assert step(scaled, engine)

    scaled.refresh_from_db()
    assert scaled.state == RolloutState.FAILED
    assert "with 2 of 3 tasks running" in scaled.reason
    assert (
        f"the scheduler cannot place 1 task(s): dockercoins_worker.3 pending ({WHY})"
        in (scaled.reason)
    )


PORT = "no suitable node (host-mode port already in use on 1 node)"


def test_a_task_waiting_for_the_old_one_to_free_its_port_is_not_called_unplaced(
    worker, engine, monkeypatch
):
    # Reported by the new-user trial: every stop-first update of a one-task
    # service with a host-mode port (hasher, rng, webui on a kernel without
    # IPVS) said "cannot be placed" for the 5 s its old task took to stop.
    rollout = services.service_change(
        service=worker, user=None, change_cause="1.1", tag="1.1"
    )
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    svc = engine.service("dockercoins_worker")
    old = next(t for t in engine.task_list if t["Slot"] == 1)
    old["DesiredState"] = "shutdown"  # told to stop, still running
    engine.add_task(svc, 1, "pending", err=PORT, image="dockercoins:1.1")
    engine.task_list[-1]["NodeID"] = ""

    step(rollout, engine)
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )
    out = io.StringIO()
    call_command("rollout", "status", stdout=out, stderr=io.StringIO())

    assert not rollout.events.filter(kind="unplaced").exists()
    assert "cannot be placed" not in out.getvalue()

    old["Status"]["State"] = "shutdown"  # stopped: now the reason is real
    step(rollout, engine)
    assert rollout.events.filter(kind="unplaced").exists()
