"""The stability window counts on the engine's clocks only: it starts when the
engine dates the task's start and ends `window` seconds later by the engine's
SystemTime, whatever the controller's clock says and however late a look of
ours first saw the task running (rules in rollouts.control.outcome). And a
follower of the rollout knows when to look again (rollouts.control.verdict)."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from rollouts.control import driver
from rollouts.control.outcome import not_yet_stable, window_left
from rollouts.control.verdict import VERDICT_DUE_LOOK, View, look_again_in
from rollouts.engine.objects import Task
from rollouts.management.terminal import LOOK_AT_LEAST, LOOK_EVERY, next_look
from rollouts.models import Rollout, RolloutState, Service
from rollouts.records import requests
from tests.rollouts.fake_engine import engine_time

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def task(
    *, state="running", since=T0, created=T0 - timedelta(seconds=2), tid="t1"
) -> Task:
    return Task.from_engine(
        {
            "ID": tid,
            "Slot": 1,
            "DesiredState": "running",
            "CreatedAt": engine_time(created),
            "Status": {"State": state, "Timestamp": engine_time(since)},
        }
    )


def young(tasks: list[Task], now: datetime, window: float = 5) -> list[str]:
    return not_yet_stable(tasks, window=window, now=now, name_of=lambda t: t.id)


# --- the rule, on the engine's objects ------------------------------------------


def test_it_starts_the_window_at_the_engines_time_for_the_running_state():
    started = task(since=T0)
    assert started.running_since == T0.replace(microsecond=0)
    assert young([started], T0 + timedelta(seconds=4.9)) == ["t1"]
    assert young([started], T0 + timedelta(seconds=5)) == []


def test_a_task_that_does_not_run_has_no_start_and_is_never_stable():
    starting = task(state="starting")
    assert starting.running_since is None
    assert young([starting], T0 + timedelta(hours=1)) == ["t1"]


def test_a_node_clock_behind_the_manager_cannot_date_a_start_before_creation():
    # The agent's clock is 30 s behind: it dates the start before the manager
    # created the task. The window starts at creation instead, never earlier.
    created = T0
    behind = task(since=T0 - timedelta(seconds=30), created=created)
    assert behind.running_since == created
    assert young([behind], T0 + timedelta(seconds=4)) == ["t1"]
    assert young([behind], T0 + timedelta(seconds=5)) == []


def test_a_start_dated_after_the_engines_now_waits_the_whole_window_from_it():
    # An agent clock ahead of the manager's: the task looks younger, so the
    # window lasts longer, never shorter.
    ahead = task(since=T0 + timedelta(seconds=3))
    assert window_left([ahead], window=5, now=T0) == 8
    assert young([ahead], T0 + timedelta(seconds=7)) == ["t1"]
    assert young([ahead], T0 + timedelta(seconds=8)) == []


def test_window_left_is_the_youngest_tasks_and_goes_negative_once_it_ended():
    older, newer = task(since=T0, tid="a"), task(since=T0 + timedelta(seconds=2))
    assert window_left([older, newer], window=5, now=T0 + timedelta(seconds=3)) == 4
    assert window_left([older, newer], window=5, now=T0 + timedelta(seconds=8)) == -1
    assert window_left([], window=5, now=T0) is None


# --- the rule, on a rollout -------------------------------------------------------


def applied(worker: Service, engine) -> Rollout:
    Service.objects.filter(pk=worker.pk).update(stable_for=5)
    worker.refresh_from_db()
    rollout = requests.service_change(
        service=worker, user=None, change_cause="test", tag="1.1"
    )
    assert driver.rollout_claim(rollout=rollout, owner="cli")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    assert rollout.state == RolloutState.WATCHING, rollout.reason
    return rollout


def step(rollout: Rollout, engine) -> bool:
    return driver.rollout_watch_step(rollout=rollout, client=engine.client())


def new_tasks_running(engine) -> dict:
    svc = engine.service("dockercoins_worker")
    engine.tick()
    engine.replace_tasks(svc, "running")  # dated at the engine's now
    engine.set_update(svc, "completed")
    return svc


@pytest.mark.django_db
def test_a_task_first_seen_late_is_judged_from_the_engines_start(worker, engine):
    rollout = applied(worker, engine)
    new_tasks_running(engine)
    engine.tick(4)  # our first look comes 4 s after the engine's start

    assert not step(rollout, engine)
    assert rollout.look_again_in == pytest.approx(1)
    engine.tick(1)  # 5 s after the start, 1 s after we first saw it
    assert step(rollout, engine)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED


@pytest.mark.django_db
@pytest.mark.parametrize("skew", [timedelta(hours=3), -timedelta(hours=3)])
def test_the_controllers_clock_neither_shortens_nor_lengthens_it(
    worker, engine, monkeypatch, skew
):
    rollout = applied(worker, engine)
    real_now = timezone.now
    monkeypatch.setattr(
        "rollouts.control.watcher.timezone.now", lambda: real_now() + skew
    )
    new_tasks_running(engine)
    engine.tick(4.9)
    assert not step(rollout, engine)  # 4.9 s on the engine's clock

    engine.tick(0.1)
    assert step(rollout, engine)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED


# --- when a follower looks again ----------------------------------------------------


def view(**fields) -> View:
    return View(name="dc_worker", image="dc:1.1", tasks=[], want=1, **fields)


def test_a_follower_looks_again_when_the_window_ends():
    assert look_again_in(view(young=["dc_worker.1"], window_left=3.2)) == 3.2


def test_it_looks_often_while_the_engines_own_verdict_is_due():
    due = view(converged=True, update_state="updating", window_left=-0.5)
    assert look_again_in(due) == VERDICT_DUE_LOOK
    # Not for ever: the engine may stay "updating" for reasons of its own.
    late = view(converged=True, update_state="updating", window_left=-2.5)
    assert look_again_in(late) is None
    # Nothing to wait for that the window tells.
    assert look_again_in(view(converged=False, update_state="updating")) is None


def test_the_wait_loop_takes_the_soonest_guess_within_bounds():
    def followed(*hints):
        return [SimpleNamespace(is_final=False, look_again_in=h) for h in hints]

    assert next_look(followed(None)) == LOOK_EVERY
    assert next_look(followed(None, 0.3, 0.7)) == 0.3
    assert next_look(followed(0.0)) == LOOK_AT_LEAST
    assert next_look(followed(12.0)) == LOOK_EVERY
    done = SimpleNamespace(is_final=True, look_again_in=0.0)
    assert next_look([done]) == LOOK_EVERY
