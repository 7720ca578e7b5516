"""The canary step against the fake engine, with Prometheus' figures stubbed:
the hold is the engine's own update delay, promotion is a write of ours (never
an outside write), a failed analysis asks the engine for its rollback, and no
data holds. The real engine and Prometheus: test_swarm_canary.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rollouts.analysis.prometheus import PrometheusError
from rollouts.analysis.rules import VersionFigure
from rollouts.control import canary
from rollouts.control.controller import Controller
from rollouts.control.driver import rollout_apply
from rollouts.engine.sync import service_sync
from rollouts.models import AnalysisMeasurement, RolloutState, Service
from rollouts.records import requests
from rollouts.spec.drift import service_drift
from rollouts.spec.specs import to_ns

DAY_NS = to_ns(canary.HOLD)


# The worker's own update policy (declared, and what ran before the canary).
DECLARED = {"Parallelism": 1, "Delay": to_ns(2)}


@pytest.fixture
def held(worker, engine, monkeypatch):
    """A worker rollout 1.0 -> 1.1 with one canary task, written and held; the
    worker's declared update policy is parallelism 1, delay 2 s."""
    engine.service("dockercoins_worker")["Spec"]["UpdateConfig"] = dict(DECLARED)
    service_sync(client=engine.client())
    worker.refresh_from_db()
    worker.canary, worker.analysis_interval = 1, 10
    worker.update_parallelism, worker.update_delay = 1, 2.0
    worker.save()
    controller = Controller(owner="a", client=engine.client(), sync_interval=3600)
    rollout = requests.service_change(
        service=worker, user=None, change_cause="canary", tag="1.1"
    )
    assert controller.handle_one()
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "updating")
    canary_runs(engine, svc)
    engine.tick(canary.WARM_UP + 60)  # warm, and an interval since
    started_ago(rollout, canary.WARM_UP + 60)
    return controller, rollout


def started_ago(rollout, seconds: float) -> None:
    """The engine's clock moved on (engine.tick); ours too, for the rollout."""
    type(rollout).objects.filter(pk=rollout.pk).update(
        started_at=timezone.now() - timedelta(seconds=seconds)
    )
    rollout.refresh_from_db()


def canary_runs(engine, svc):
    """The engine's first batch: slot 1's old task shut down, the canary runs."""
    old = next(
        t
        for t in engine.task_list
        if t["ServiceID"] == svc["ID"]
        and t["Slot"] == 1
        and t["DesiredState"] == "running"
    )
    engine.set_state(old, "shutdown")
    return engine.add_task(svc, 1, "running", image="dockercoins:1.1")


def figures_are(monkeypatch, found):
    def stub(template, window, *, at=None, base_url=""):
        if isinstance(found, Exception):
            raise found
        return found

    monkeypatch.setattr(canary, "figures", stub)


def next_interval(rollout):
    AnalysisMeasurement.objects.filter(rollout=rollout).update(
        at=timezone.now() - timedelta(hours=1)
    )


def assert_the_follow_up_puts_1_0_back(controller, engine, rollout) -> None:
    """The rollback that followed `rollout` completes on the engine: the
    service's desired spec is what runs again, never with the hold."""
    follow_up = rollout.service.rollouts.get(kind="rollback")
    engine.replace_tasks(engine.service("dockercoins_worker"))
    engine.set_update(engine.service("dockercoins_worker"), "completed")
    for _ in range(5):
        if controller.handle_one() is False:
            break
    follow_up.refresh_from_db()
    assert follow_up.state == RolloutState.COMPLETED, follow_up.reason
    worker = rollout.service
    worker.refresh_from_db()
    assert worker.tag == "1.0"  # what runs again
    assert worker.update_delay != canary.HOLD


def passes_the_analysis(controller, rollout, monkeypatch) -> None:
    """The new version mines as well as the old: measured until the run
    succeeds (and the canary is promoted)."""
    good, old = VersionFigure("1.1", 3.2, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": good, "1.0": old})
    for _ in range(rollout.service.analysis_count):
        controller.handle_one()
        next_interval(rollout)


def test_it_holds_the_update_after_the_canary_batch_with_the_engines_delay(
    held, engine
):
    _, rollout = held
    config = engine.service("dockercoins_worker")["Spec"]["UpdateConfig"]
    assert (config["Parallelism"], config["Delay"]) == (1, DAY_NS)
    assert (rollout.canary_state, rollout.baseline_version) == ("holding", "1.0")


def test_it_rolls_back_when_the_new_tasks_mine_slower(held, engine, monkeypatch):
    controller, rollout = held
    slow, old = VersionFigure("1.1", 0.33, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": slow, "1.0": old})
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rollout.reason.startswith(
        "analysis failed: new tasks mine 0.33 hashes/s each against 3.30 hashes/s "
        "for dockercoins:1.0 (-90 %; limit -20 %"
    )
    assert rollout.measurements.get().phase == "Failed"
    assert rollout.service.rollouts.filter(kind="rollback").exists()


def test_it_promotes_with_a_write_of_its_own_and_completes(held, engine, monkeypatch):
    controller, rollout = held
    passes_the_analysis(controller, rollout, monkeypatch)
    rollout.refresh_from_db()
    svc = engine.service("dockercoins_worker")
    assert rollout.canary_state == "promoted"
    assert svc["Spec"]["UpdateConfig"]["Delay"] == to_ns(2)  # the declared one
    assert rollout.applied_spec["UpdateConfig"]["Delay"] == to_ns(2)  # ours
    engine.replace_tasks(svc)
    engine.set_update(svc, "completed")
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED, rollout.reason


def test_it_holds_and_says_why_when_prometheus_is_down(held, monkeypatch):
    controller, rollout = held
    figures_are(monkeypatch, PrometheusError("Prometheus at x unreachable: refused"))
    for _ in range(6):
        controller.handle_one()
        next_interval(rollout)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.WATCHING
    assert set(rollout.measurements.values_list("phase", flat=True)) == {"Error"}
    said = list(rollout.events.values_list("message", flat=True))
    assert any("holding" in m and "unreachable" in m for m in said)
    assert any("inconclusive limit reached" in m for m in said)  # 4 errors in a row


def test_an_operator_promotes_a_held_rollout_with_who_and_why(
    held, engine, monkeypatch, admin_user
):
    controller, rollout = held
    figures_are(monkeypatch, {})
    requests.rollout_promote(
        service=rollout.service, user=admin_user, cause="looks fine"
    )
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.canary_state == "promoted"
    said = list(rollout.events.values_list("message", flat=True))
    assert any("promoted by admin: looks fine" in m for m in said)
    assert live_policy(engine) == (1, to_ns(2))


# --- measuring only warm tasks ----------------------------------------------------


def test_it_measures_only_once_the_canary_ran_warm_for_an_interval(
    worker, engine, monkeypatch
):
    # The first window once began at our write and took in the canary's
    # start-up: a healthy 1.1 read -39 % (issue 14).
    worker.canary, worker.analysis_interval = 1, 10
    worker.save()
    controller = Controller(owner="a", client=engine.client(), sync_interval=3600)
    rollout = requests.service_change(
        service=worker, user=None, change_cause="canary", tag="1.1"
    )
    controller.handle_one()
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "updating")
    figures_are(
        monkeypatch,
        {
            "1.1": VersionFigure("1.1", 3.2, 1, 6),
            "1.0": VersionFigure("1.0", 3.3, 1, 6),
        },
    )
    engine.tick(60)
    started_ago(rollout, 60)
    controller.handle_one()  # no canary task runs yet
    assert not rollout.measurements.exists()
    canary_runs(engine, svc)
    engine.tick(canary.WARM_UP + 5)
    started_ago(rollout, 60 + canary.WARM_UP + 5)
    controller.handle_one()  # warm, but not for a whole interval yet
    assert not rollout.measurements.exists()
    engine.tick(5)
    started_ago(rollout, 60 + canary.WARM_UP + 10)
    controller.handle_one()
    assert rollout.measurements.get().phase == "Successful"


# --- the hold never outlives its rollout -----------------------------------------


def live_policy(engine) -> tuple[int, int]:
    config = engine.service("dockercoins_worker")["Spec"]["UpdateConfig"]
    return config["Parallelism"], config["Delay"]


def assert_declared_and_no_drift(engine, rollout) -> None:
    assert live_policy(engine) == (1, to_ns(2))
    rollout.refresh_from_db()
    assert rollout.canary_state != "holding"
    service_sync(client=engine.client())
    worker = rollout.service
    worker.refresh_from_db()
    assert (worker.update_parallelism, worker.update_delay) == (1, 2.0)
    assert service_drift(worker) is None, service_drift(worker)


def test_a_promoted_canary_leaves_the_declared_update_delay(held, engine, monkeypatch):
    controller, rollout = held
    passes_the_analysis(controller, rollout, monkeypatch)
    assert_declared_and_no_drift(engine, rollout)


def test_a_rolled_back_canary_leaves_the_declared_update_delay(
    held, engine, monkeypatch
):
    controller, rollout = held
    slow, old = VersionFigure("1.1", 0.33, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": slow, "1.0": old})
    controller.handle_one()
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rollout.canary_state == "released"  # nothing left to release
    rollbacks = [w for w in engine.writes if (w.get("params") or {}).get("rollback")]
    assert len(rollbacks) == 1  # the engine's rollback, never a second one
    engine.replace_tasks(engine.service("dockercoins_worker"))
    controller.handle_one()
    assert_declared_and_no_drift(engine, rollout)


def test_an_aborted_canary_is_rolled_back_to_the_declared_update_delay(
    held, engine, admin_user
):
    controller, rollout = held
    requests.rollout_abort(service=rollout.service, user=admin_user, cause="no")
    rollout.refresh_from_db()
    assert "The held canary is rolled back" in rollout.reason
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ABORTED
    assert rollout.canary_state == "released"
    said = list(rollout.events.values_list("message", flat=True))
    assert any("hold released: the canary ended aborted" in m for m in said), said
    assert_the_follow_up_puts_1_0_back(controller, engine, rollout)
    engine.replace_tasks(engine.service("dockercoins_worker"))
    controller.handle_one()
    assert_declared_and_no_drift(engine, rollout)
    controller.handle_one()  # released once: no second rollback
    rollbacks = [w for w in engine.writes if (w.get("params") or {}).get("rollback")]
    assert len(rollbacks) == 1


def test_a_controller_started_after_the_abort_releases_the_hold(
    held, engine, admin_user
):
    _, rollout = held
    requests.rollout_abort(service=rollout.service, user=admin_user, cause="no")
    restarted = Controller(owner="b", client=engine.client(), sync_interval=3600)
    restarted.handle_one()
    assert live_policy(engine) == (1, to_ns(2))
    rollout.refresh_from_db()
    assert rollout.canary_state == "released"


def test_a_canary_paused_by_the_engine_is_rolled_back_to_the_declared_policy(
    held, engine
):
    controller, rollout = held
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "paused", "update paused due to failure")
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.PAUSED, rollout.reason
    assert rollout.canary_state == "released"
    assert live_policy(engine) == (1, to_ns(2))


def test_an_outside_write_over_a_held_canary_gets_the_declared_policy_not_drift(
    held, engine
):
    controller, rollout = held
    engine.outside_update("dockercoins_worker", Image="dockercoins:bugged")
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.SUPERSEDED, rollout.reason
    assert rollout.canary_state == "released"
    svc = engine.service("dockercoins_worker")
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "dockercoins:bugged"
    assert live_policy(engine) == (1, to_ns(2))
    service_sync(client=engine.client())
    worker = rollout.service
    worker.refresh_from_db()
    rows = service_drift(worker)["differences"]  # theirs, never our release
    assert [label for label, *_ in rows] == ["image"], rows


def test_a_canary_failed_at_its_progress_deadline_leaves_the_declared_policy(
    held, engine
):
    controller, rollout = held
    worker = rollout.service
    worker.progress_deadline, worker.deadline_action = 1, "fail"
    worker.save()
    type(rollout).objects.filter(pk=rollout.pk).update(
        started_at=timezone.now() - timedelta(minutes=5)
    )
    controller.handle_one()
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.FAILED, rollout.reason
    assert rollout.canary_state == "released"
    assert live_policy(engine) == (1, to_ns(2))


def test_a_promoted_canary_past_its_deadline_is_not_rolled_back_to_its_hold(
    held, engine, monkeypatch
):
    # After the promotion the engine's previous spec is the held one: its
    # rollback would put the hold back, with the new version.
    controller, rollout = held
    passes_the_analysis(controller, rollout, monkeypatch)
    rollout.refresh_from_db()
    assert rollout.canary_state == "promoted"
    worker = rollout.service
    worker.progress_deadline, worker.deadline_action = 1, "rollback"
    worker.save()
    started_ago(rollout, 300)
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.FAILED
    assert "not rolled back" in rollout.reason and "canary's hold" in rollout.reason
    assert "`rollout undo worker`" in rollout.reason
    assert live_policy(engine) == (1, to_ns(2))
    assert not [w for w in engine.writes if (w.get("params") or {}).get("rollback")]


def test_new_tasks_failing_after_the_promotion_put_the_old_revision_back(
    held, engine, monkeypatch
):
    # The engine's own rollback (failure action rollback) goes to its one
    # previous spec, which the promotion overwrote with the hold: the new
    # version, held for a day. Ours takes it over with the revision before.
    controller, rollout = held
    passes_the_analysis(controller, rollout, monkeypatch)
    rollout.refresh_from_db()
    assert rollout.canary_state == "promoted"
    svc = engine.service("dockercoins_worker")
    svc["Spec"], svc["PreviousSpec"] = svc["PreviousSpec"], svc["Spec"]
    assert svc["Spec"]["UpdateConfig"]["Delay"] == DAY_NS  # where it would go
    engine.set_update(svc, "rollback_started", "update rolled back due to failure")

    controller.handle_one()

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK, rollout.reason
    assert "the canary's held spec" in rollout.reason
    assert "revision 1 (dockercoins:1.0) written instead" in rollout.reason
    spec = engine.service("dockercoins_worker")["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"].startswith("dockercoins:1.0")
    assert live_policy(engine)[1] != DAY_NS  # revision 1's own policy, no hold
    assert_the_follow_up_puts_1_0_back(controller, engine, rollout)


# --- analysis between ordinary batches ------------------------------------------


def applied_without_a_canary(worker, engine, **change):
    """1.0 -> 1.1 with no canary step and a 10 s analysis interval, written."""
    worker.canary, worker.analysis_interval = 0, 10
    worker.save()
    controller = Controller(owner="a", client=engine.client(), sync_interval=3600)
    rollout = requests.service_change(
        service=worker, user=None, change_cause="no canary", tag="1.1", **change
    )
    controller.handle_one()
    return controller, rollout


@pytest.fixture
def in_batches(worker, engine):
    """1.0 -> 1.1 with no canary, one task per batch, 60 s between batches:
    the first batch done, the engine waiting its delay."""
    controller, rollout = applied_without_a_canary(
        worker, engine, update_parallelism=1, update_delay="60s"
    )
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "updating")
    canary_runs(engine, svc)
    engine.tick(canary.WARM_UP + 20)
    started_ago(rollout, canary.WARM_UP + 20)
    return controller, rollout


def test_an_update_in_batches_is_measured_during_its_delay_without_a_hold(
    in_batches, engine
):
    _, rollout = in_batches
    assert rollout.canary_state == "batches"
    assert live_policy(engine) == (1, to_ns(60))  # the declared delay, no hold
    said = list(rollout.events.values_list("message", flat=True))
    assert any("between batches" in m for m in said), said


def test_a_failed_analysis_between_batches_rolls_back_before_the_next_one(
    in_batches, engine, monkeypatch
):
    controller, rollout = in_batches
    slow, old = VersionFigure("1.1", 0.33, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": slow, "1.0": old})
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rollout.reason.startswith("analysis failed: new tasks mine 0.33")
    assert rollout.service.rollouts.filter(kind="rollback").exists()


def test_a_passed_analysis_between_batches_lets_the_update_go_on(
    in_batches, engine, monkeypatch
):
    controller, rollout = in_batches
    good, old = VersionFigure("1.1", 3.2, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": good, "1.0": old})
    writes = len(engine.writes)
    for _ in range(3):
        controller.handle_one()
        next_interval(rollout)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.WATCHING
    assert rollout.canary_state == "batches"  # never "promoted": nothing held
    assert len(engine.writes) == writes  # no write of ours: the engine goes on
    assert set(rollout.measurements.values_list("phase", flat=True)) == {"Successful"}


def test_no_analysis_between_batches_without_a_delay_or_with_one_batch(worker):
    desired = {**worker.desired_spec(), "tag": "1.1", "replicas": 4}
    assert canary.plan(worker, {**desired, "update_delay": 0.0}, "1.0") == ""
    at_once = {**desired, "update_delay": 5.0, "update_parallelism": 0}
    assert canary.plan(worker, at_once, "1.0") == ""
    batches = {**desired, "update_delay": 5.0, "update_parallelism": 2}
    assert canary.plan(worker, batches, "1.0") == "batches"


def test_a_hold_released_late_never_touches_a_later_rollout(held, engine, admin_user):
    # Aborted while no controller ran; the operator applied again meanwhile.
    _, rollout = held
    requests.rollout_abort(service=rollout.service, user=admin_user, cause="no")
    cli = Controller(owner="cli", client=engine.client(), sync_interval=3600)
    later = requests.service_change(
        service=rollout.service, user=None, change_cause="again", tag="bugged"
    )
    rollout_apply(rollout=later, client=cli.client)
    writes = len(engine.writes)
    Controller(owner="b", client=engine.client(), sync_interval=3600).handle_one()
    rollout.refresh_from_db()
    assert rollout.canary_state == "released"
    assert len(engine.writes) == writes  # no rollback of the later write


# --- a database wiped while a canary is held --------------------------------------


def test_a_service_imported_while_held_takes_the_policy_before_the_hold(held, engine):
    controller, rollout = held
    Service.objects.all().delete()  # the database wiped mid-hold

    service_sync(client=engine.client())

    worker = Service.objects.get(name="dockercoins_worker")
    assert (worker.update_parallelism, worker.update_delay) == (1, 2.0)
    assert live_policy(engine) == (1, DAY_NS)  # the swarm still holds


def test_a_service_imported_held_with_no_previous_spec_takes_the_defaults(engine, db):
    svc = engine.service("dockercoins_worker")
    svc["Spec"]["UpdateConfig"] = {"Parallelism": 1, "Delay": DAY_NS}
    svc.pop("PreviousSpec", None)

    service_sync(client=engine.client())

    worker = Service.objects.get(name="dockercoins_worker")
    assert worker.update_delay == 0


def test_a_controller_releases_a_hold_no_rollout_of_ours_will_end(held, engine):
    controller, rollout = held
    Service.objects.all().delete()  # the database wiped mid-hold
    engine.tick(600 + 1)  # past the service's progress deadline
    controller.next_sync = 0

    controller.handle_one()

    assert live_policy(engine) == (1, to_ns(2))  # the policy before the hold
    service_sync(client=engine.client())
    worker = Service.objects.get(name="dockercoins_worker")
    assert service_drift(worker) is None  # our write, not a change outside


def test_a_hold_it_does_not_know_is_left_alone_until_its_deadline(held, engine):
    # Another database's rollout (a command line's own, as the test tiers
    # drive a stack whose controller runs too): its driver ends it in time.
    controller, rollout = held
    Service.objects.all().delete()
    controller.next_sync = 0
    controller.handle_one()
    assert live_policy(engine) == (1, DAY_NS)


def test_a_hold_with_its_rollout_still_running_is_left_to_it(held, engine):
    controller, rollout = held
    controller.next_sync = 0
    controller.handle_one()
    assert live_policy(engine) == (1, DAY_NS)


# --- analysis during the stability window ---------------------------------------


@pytest.fixture
def in_window(worker, engine):
    """1.0 -> 1.1 on one replica (no canary, no batches: the README stack's
    hasher) with a 45 s stability window: every task replaced and running."""
    controller, rollout = applied_without_a_canary(
        worker, engine, replicas=1, stable_for="45s"
    )
    svc = engine.service("dockercoins_worker")
    engine.replace_tasks(svc, image="dockercoins:1.1")
    engine.set_update(svc, "completed")
    engine.tick(canary.WARM_UP + 60)
    started_ago(rollout, canary.WARM_UP + 60)
    return controller, rollout


def test_one_replica_with_a_long_enough_window_is_measured_during_it(worker):
    desired = {**worker.desired_spec(), "tag": "1.1", "replicas": 1}
    needs = canary.window_needs(worker)
    assert canary.plan(worker, {**desired, "stable_for": needs}, "1.0") == "window"
    assert canary.plan(worker, {**desired, "stable_for": needs - 1}, "1.0") == ""


def test_a_release_failing_its_window_analysis_is_rolled_back(
    in_window, engine, monkeypatch
):
    controller, rollout = in_window
    slow, old = VersionFigure("1.1", 0.33, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": slow, "1.0": old})
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK, rollout.reason
    assert rollout.reason.startswith("analysis failed: new tasks mine 0.33")
    assert rollout.service.rollouts.filter(kind="rollback").exists()


def test_a_release_completes_only_once_its_window_analysis_passed(
    in_window, engine, monkeypatch
):
    controller, rollout = in_window
    good, old = VersionFigure("1.1", 3.2, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": good, "1.0": old})
    for _ in range(rollout.service.analysis_count + 1):
        controller.handle_one()
        rollout.refresh_from_db()
        if rollout.is_final:
            break
        next_interval(rollout)
    assert rollout.state == RolloutState.COMPLETED, rollout.reason
    assert rollout.canary_state == "passed"
    phases = list(rollout.measurements.values_list("phase", flat=True))
    assert phases == ["Successful"] * rollout.service.analysis_count


def test_a_window_with_no_data_never_completes_and_says_why(in_window, monkeypatch):
    controller, rollout = in_window
    figures_are(monkeypatch, PrometheusError("Prometheus at x unreachable: refused"))
    for _ in range(3):
        controller.handle_one()
        next_interval(rollout)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.WATCHING
    said = list(rollout.events.values_list("message", flat=True))
    assert any("holding" in m and "inconclusive" in m for m in said), said


def test_an_operator_promotes_a_window_held_on_no_data(
    in_window, monkeypatch, admin_user
):
    controller, rollout = in_window
    figures_are(monkeypatch, PrometheusError("Prometheus at x unreachable: refused"))
    controller.handle_one()
    requests.rollout_promote(service=rollout.service, user=admin_user, cause="ok")
    controller.handle_one()
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED, rollout.reason


def test_after_a_canary_rolled_back_undo_never_offers_the_rejected_release(
    held, engine, monkeypatch
):
    # Reported by the new-user trial: `rollout plan worker` offered an undo
    # to the slow release the analysis had just rolled back.
    from rollouts.records.selectors import revision_undo_target

    controller, rollout = held
    slow, old = VersionFigure("1.1", 0.33, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": slow, "1.0": old})
    controller.handle_one()
    svc = engine.service("dockercoins_worker")
    engine.replace_tasks(svc)
    engine.set_update(svc, "rollback_completed")
    for _ in range(3):
        controller.handle_one()
    worker = Service.objects.get(name="dockercoins_worker")
    assert worker.rollouts.get(kind="rollback").state == RolloutState.COMPLETED

    target = revision_undo_target(service=worker)

    # Revision 1 (1.0, the policy before the test declared its own), never
    # revision 2 (1.1, rolled back).
    assert (target.number, target.spec["tag"]) == (1, "1.0")


def test_a_window_with_no_data_ends_at_the_progress_deadline(in_window, monkeypatch):
    # The engine's update is over, so only the analysis holds the verdict: it
    # must not hold past the deadline (found on the real stack: a Prometheus
    # restarted just before had no baseline, and the rollout waited forever).
    controller, rollout = in_window
    figures_are(monkeypatch, PrometheusError("Prometheus at x unreachable: refused"))
    controller.handle_one()
    started_ago(rollout, rollout.service.progress_deadline + 1)

    controller.handle_one()

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.FAILED, rollout.reason
    assert rollout.reason.startswith("progress deadline of 10m passed with the")
    assert "unreachable" in rollout.reason
