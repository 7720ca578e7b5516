"""One rollout, one driver: claims, leases and the controller's unit of work."""

import os
from datetime import timedelta

import pytest
from django.db import OperationalError, connections
from django.utils import timezone

from rollouts.control import database, driver
from rollouts.control.controller import Controller
from rollouts.engine.client import SwarmUnreachable
from rollouts.models import Rollout, RolloutState, Service
from rollouts.records import requests

pytestmark = pytest.mark.django_db


def queued(worker: Service, **desired) -> Rollout:
    return requests.service_change(
        service=worker, user=None, change_cause="test", **(desired or {"tag": "1.1"})
    )


def lapse(rollout: Rollout) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )


def test_of_two_controllers_claiming_at_once_exactly_one_gets_it(worker):
    rollout = queued(worker)
    seen_by_a = Rollout.objects.get(pk=rollout.pk)
    seen_by_b = Rollout.objects.get(pk=rollout.pk)  # both read it as queued

    assert driver.rollout_claim(rollout=seen_by_a, owner="a")
    assert not driver.rollout_claim(rollout=seen_by_b, owner="b")

    rollout.refresh_from_db()
    assert (rollout.state, rollout.lease_owner) == (RolloutState.APPLYING, "a")
    assert driver.rollout_claim_next(owner="b") is None


def test_claim_next_takes_the_oldest_queued_rollout(worker, engine):
    rng = Service.objects.get(short_name="rng")
    first = queued(worker)
    queued(rng, replicas=2)

    assert driver.rollout_claim_next(owner="a") == first


def test_a_queued_rollout_waits_while_its_service_has_a_running_one(worker):
    Rollout.objects.create(service=worker, kind="apply", state=RolloutState.WATCHING)
    waiting = Rollout.objects.create(service=worker, kind="apply")

    assert not driver.rollout_claim(rollout=waiting, owner="a")
    assert driver.rollout_claim_next(owner="a") is None


def test_a_lease_is_taken_over_only_once_it_ran_out(worker, engine):
    rollout = queued(worker)
    driver.rollout_claim(rollout=rollout, owner="a")

    assert driver.rollout_take_over(rollout=rollout, owner="a")  # renewal
    assert not driver.rollout_take_over(rollout=rollout, owner="b")
    lapse(rollout)
    assert driver.rollout_take_over(rollout=rollout, owner="b")
    assert not driver.rollout_take_over(rollout=rollout, owner="a")

    assert rollout.lease_owner == "b"
    assert rollout.events.filter(message__contains="taken over by b").exists()


def test_two_controllers_never_apply_the_same_rollout_twice(worker, engine):
    a = Controller(owner="a", client=engine.client())
    b = Controller(owner="b", client=engine.client())
    rollout = queued(worker, replicas=3)

    assert a.handle_one()
    assert not b.handle_one()

    updates = [w for w in engine.writes if w["op"] == "update"]
    assert len(updates) == 1
    rollout.refresh_from_db()
    assert (rollout.state, rollout.lease_owner) == (RolloutState.WATCHING, "a")


def test_a_controller_takes_over_a_rollout_whose_watcher_went_away(worker, engine):
    a = Controller(owner="a", client=engine.client())
    rollout = queued(worker, replicas=3)
    a.handle_one()
    engine.add_task(engine.service("dockercoins_worker"), 3, "running")
    b = Controller(owner="b", client=engine.client())

    b.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.WATCHING  # a's lease still holds

    lapse(rollout)
    b.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    assert rollout.lease_owner == "b"


def test_a_restarted_controller_resumes_watching_at_once(worker, engine):
    rollout = queued(worker, replicas=3)
    Controller(owner="controller@node-0:1", client=engine.client()).handle_one()
    engine.add_task(engine.service("dockercoins_worker"), 3, "running")

    restarted = Controller(owner="controller@node-0:1", client=engine.client())
    restarted.handle_one()

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED


def test_a_rollout_left_applying_is_applied_again_by_the_next_driver(worker, engine):
    rollout = queued(worker)
    driver.rollout_claim(rollout=rollout, owner="crashed")
    lapse(rollout)

    Controller(owner="b", client=engine.client()).handle_one()

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.WATCHING
    assert [w["op"] for w in engine.writes] == ["update"]


def test_the_controller_imports_the_stack_before_anything_else(engine, db):
    Controller(owner="a", client=engine.client()).handle_one()
    assert set(Service.objects.values_list("short_name", flat=True)) == {
        "rng",
        "worker",
    }


def test_a_scale_saved_in_the_admin_is_applied_and_watched(worker, engine):
    controller = Controller(owner="a", client=engine.client(), sync_interval=3600)
    rollout = requests.service_scale(service=worker, user=None, replicas=3)

    assert controller.handle_one()
    assert engine.service("dockercoins_worker")["Spec"]["Mode"] == {
        "Replicated": {"Replicas": 3}
    }
    engine.add_task(engine.service("dockercoins_worker"), 3, "running")
    assert not controller.handle_one()

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    worker.refresh_from_db()
    assert (worker.live_running, worker.live_desired) == (3, 3)


def test_the_engine_going_away_mid_rollout_only_delays_the_verdict(worker, engine):
    controller = Controller(owner="a", client=engine.client())
    rollout = queued(worker, replicas=3)
    controller.handle_one()
    engine.down = True

    with pytest.raises(SwarmUnreachable):
        controller.handle_one()  # the command logs this and backs off

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.WATCHING
    engine.down = False
    engine.add_task(engine.service("dockercoins_worker"), 3, "running")
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED


def test_one_rollouts_trouble_does_not_stall_the_others(worker, engine, monkeypatch):
    rng = Service.objects.get(short_name="rng")
    controller = Controller(owner="a", client=engine.client())
    broken = queued(worker, replicas=3)
    fine = queued(rng, replicas=2)
    controller.handle_one()
    controller.handle_one()  # both applied, both watched
    engine.add_task(engine.service("dockercoins_rng"), 2, "running")
    real_step = driver.rollout_watch_step

    def step(*, rollout, client):
        if rollout.pk == broken.pk:
            raise RuntimeError("a bug")
        return real_step(rollout=rollout, client=client)

    monkeypatch.setattr("rollouts.control.driver.rollout_watch_step", step)

    controller.handle_one()

    fine.refresh_from_db()
    broken.refresh_from_db()
    assert (fine.state, broken.state) == (RolloutState.COMPLETED, RolloutState.WATCHING)


class Rounds:
    """Stands in for Controller.handle_one: each round works or raises, and
    records whether the heartbeat was touched since the round before."""

    def __init__(self, controller: Controller, alive, outcomes: list) -> None:
        self.controller, self.alive, self.outcomes = controller, alive, outcomes
        self.ages: list[bool] = []  # after each round: was the heartbeat fresh?

    def __call__(self) -> bool:
        self.ages.append(self.alive.stat().st_mtime > 0)
        os.utime(self.alive, (0, 0))  # as if the last touch was long ago
        outcome = self.outcomes.pop(0)
        if not self.outcomes:
            self.controller.request_stop()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_a_controller_reconnects_after_losing_its_database(
    engine, tmp_path, monkeypatch
):
    controller = Controller(owner="a", client=engine.client())
    alive = tmp_path / "alive"
    lost = OperationalError("the connection is lost")
    rounds = Rounds(controller, alive, [True, lost, lost, True, True])
    dropped, sleeps = [], []
    monkeypatch.setattr(controller, "handle_one", rounds)
    monkeypatch.setattr(controller, "sleep", sleeps.append)
    monkeypatch.setattr(
        "rollouts.control.controller.database.drop_broken_connections",
        lambda: dropped.append(1),
    )

    controller.run(alive)

    assert len(dropped) == 2  # each failed round drops the broken connection
    assert sleeps == [1.0, 2.0]  # backed off; the round after worked at once


def test_the_heartbeat_ages_while_the_controller_cannot_work(
    engine, tmp_path, monkeypatch
):
    controller = Controller(owner="a", client=engine.client())
    alive = tmp_path / "alive"
    lost = OperationalError("the connection is lost")
    away = SwarmUnreachable("Docker engine unreachable at unix:///x")
    rounds = Rounds(controller, alive, [True, lost, away, lost, True, True])
    monkeypatch.setattr(controller, "handle_one", rounds)
    monkeypatch.setattr(controller, "sleep", lambda seconds: None)
    monkeypatch.setattr(
        "rollouts.control.controller.database.drop_broken_connections", lambda: None
    )

    controller.run(alive)

    # Touched at the start and after each round that worked, never while
    # rounds fail: the entrypoint's watch restarts only a stuck controller.
    assert rounds.ages == [True, True, False, False, False, True]


def closes(monkeypatch) -> list[int]:
    """Spy on the connection's close() (SQLite's in-memory test database
    ignores it, PostgreSQL's connections do not)."""
    closed: list[int] = []
    wrapper = connections["default"]
    real = wrapper.close

    def close() -> None:
        closed.append(1)
        real()

    monkeypatch.setattr(wrapper, "close", close)
    return closed


@pytest.mark.django_db(transaction=True)
def test_a_broken_connection_is_closed_so_the_next_query_opens_another(
    worker, monkeypatch
):
    closed = closes(monkeypatch)
    Service.objects.count()

    database.drop_broken_connections()

    assert closed == [1]
    assert Service.objects.count() >= 1


def test_a_connection_inside_a_transaction_is_left_to_its_rollback(worker, monkeypatch):
    closed = closes(monkeypatch)
    Service.objects.count()
    database.drop_broken_connections()  # pytest-django's transaction holds it
    assert closed == []
