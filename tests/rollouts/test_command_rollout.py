"""`manage.py rollout`, run with call_command against a fake engine."""

import io
import os
import signal

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

from rollouts.control.controller import Controller
from rollouts.engine.client import SwarmUnreachable
from rollouts.management import terminal
from rollouts.management.commands.rollout import Command
from rollouts.models import Rollout, RolloutState, Service

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_docker(engine, monkeypatch):
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )
    monkeypatch.setattr(
        "rollouts.management.terminal.time.sleep", lambda seconds: engine.tick()
    )


def rollout(*args: str) -> str:
    out = io.StringIO()
    call_command("rollout", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_sync_lists_the_stacks_services_and_images(engine):
    out = rollout("sync")
    assert "stack dockercoins: 2 services" in out
    assert "dockercoins_worker: dockercoins:1.0, 2/2 running" in out
    assert "dockercoins:bugged" in out


def test_plan_shows_each_difference_in_human_units_and_exits_1(worker):
    Service.objects.filter(pk=worker.pk).update(
        tag="1.1", update_parallelism=2, update_delay=5.0
    )
    out = io.StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("rollout", "plan", "worker", stdout=out)

    assert exited.value.code == 1
    assert out.getvalue().splitlines() == [
        "dockercoins_worker: 3 difference(s), live -> desired",
        "  image: dockercoins:1.0 -> dockercoins:1.1",
        "  update parallelism: 1 -> 2",
        "  update delay: 0s -> 5s",
        "expected duration: about 7s: 1 batch(es) of up to 2 task(s), 5s apart, "
        "5s monitor after the last, ~2s start-up per batch",
        "rollback: the engine keeps no previous spec of this service; there is no "
        "earlier revision of ours to undo to",
    ]


def test_plan_exits_0_when_live_matches_desired(worker):
    assert "matches" in rollout("plan", "dockercoins_worker")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image-tag", "9.9"], "--image-tag: image dockercoins:9.9 is not on"),
        (["--image", "Bad Name"], "--image: 'Bad Name:1.0' is not a valid image"),
        (["--update-max-failure-ratio", "1.5"], "--update-max-failure-ratio: must be"),
        (["--update-delay", "-5"], "--update-delay: must be at least 0s"),
        (["--update-delay", "48h"], "--update-delay: must be at most 24h"),
        (["--update-delay", "5x"], "argument --update-delay: '5x' is not a duration"),
        (
            ["--update-failure-action", "rollback", "--update-delay", "30s"],
            "--update-monitor: with failure action rollback the monitor (5s)",
        ),
        (["--replicas", "5000"], "--replicas: must be a whole number from 0 to 1000"),
        (["--mode", "global", "--replicas", "3"], "--replicas: a global service"),
        (
            ["--mode", "global"],
            "changing dockercoins_worker from replicated",
        ),
        (["--cause", ""], None),  # nothing to apply: not an error
    ],
)
def test_bad_input_is_one_line_and_nothing_reaches_the_swarm(
    worker, engine, args, message
):
    if message is None:
        assert "matches" in rollout("apply", "worker", *args)
        return
    with pytest.raises(CommandError) as raised:
        rollout("apply", "worker", *args)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text
    assert [w for w in engine.writes] == []
    assert not Rollout.objects.exists()


def test_an_unknown_service_is_named_with_the_known_ones(worker):
    with pytest.raises(CommandError, match="no service 'wrker' in stack dockercoins"):
        rollout("apply", "wrker", "--image-tag", "1.1")


def test_a_vanished_service_is_refused(worker, engine):
    del engine.svcs[engine.service("dockercoins_worker")["ID"]]
    with pytest.raises(CommandError, match="no longer exists in the swarm"):
        rollout("apply", "worker", "--image-tag", "1.1")


def test_an_unreachable_engine_is_one_line(worker, engine):
    engine.down = True
    with pytest.raises(CommandError, match="^Docker engine unreachable at "):
        rollout("apply", "worker", "--image-tag", "1.1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--update-delay", "-5s"], "'-5s' is not a duration: a duration is never"),
        (["--update-delay", "nan"], "'nan' is not a duration"),
        (["--update-delay", "inf"], "'inf' is not a duration"),
        (["--update-delay", "1e999"], "'1e999' is not a duration"),
        (["--progress-deadline", "nan"], "'nan' is not a duration"),
        (["--update-delay", "\u0665s"], "is not a duration"),  # ٥s
        (["--update-max-failure-ratio", "nan"], "'nan' is not a number"),
        (["--replicas", "\u0663"], "is not a whole number"),  # ٣
        (["--replicas", "\u00b2"], "is not a whole number"),  # ²
        (["--replicas", "-1"], "--replicas: must be a whole number from 0 to 1000"),
        (["--stable-for", "nan"], "'nan' is not a duration"),
        (["--stable-for", "-5s"], "'-5s' is not a duration: a duration is never"),
        (["--stable-for", "-5"], "--stable-for: must be at least 0s"),
        (["--update-monitor", "-1"], "--update-monitor: must be at least 0s"),
    ],
)
def test_numbers_are_read_strictly_and_refused_in_one_line(
    worker, engine, args, message
):
    with pytest.raises(CommandError) as raised:
        rollout("apply", "worker", *args)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert engine.writes == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["apply", "worker", "--replicas", "-1"], "--replicas: must be a whole"),
        (["scale", "worker", "-1"], "REPLICAS: must be a whole number"),
        (["apply", "nope", "--replicas", "3"], "no service 'nope'"),
        (["scale", "nope", "3"], "no service 'nope'"),
        (["undo", "nope"], "no service 'nope'"),
        (["plan", "nope"], "no service 'nope'"),
        (["abort", "nope", "--cause", "x"], "no service 'nope'"),
        (["adopt", "nope"], "no service 'nope'"),
        (["reapply", "nope"], "no service 'nope'"),
        (["abort", "worker", "--cause", "x"], "has no rollout in flight to abort"),
    ],
)
def test_bad_input_is_reported_before_the_engine_is_asked(
    worker, engine, args, message
):
    engine.down = True
    with pytest.raises(CommandError, match=message):
        rollout(*args)


def test_a_usage_error_is_one_line_and_exit_2(worker, capsys):
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "rollout", "apply", "--no-such-flag"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error: unrecognized arguments: --no-such-flag" in err


def test_an_abort_without_a_cause_is_a_one_line_usage_error(worker, capsys):
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "rollout", "abort", "worker"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error: the following arguments are required: --cause" in err


def test_abort_ends_the_rollout_in_flight_and_undo_works_at_once(worker, engine):
    rollout("apply", "worker", "--image-tag", "1.1", "--stable-for", "30s")
    watching = Rollout.objects.get()
    assert watching.state == RolloutState.WATCHING
    assert watching.revision.spec["stable_for"] == 30.0

    out = rollout("abort", "worker", "--cause", "too slow")

    watching.refresh_from_db()
    assert watching.state == RolloutState.ABORTED
    assert "aborted by the command line: too slow." in out
    rollout("undo", "worker")
    undo = Rollout.objects.order_by("-pk").first()
    assert undo.revision.spec["tag"] == "1.0"


def test_a_controller_without_a_writable_alive_file_is_one_line(worker):
    with pytest.raises(CommandError, match="^--alive-file /nonexistent/dir/x: cannot"):
        rollout("controller", "--alive-file", "/nonexistent/dir/x")


@pytest.mark.parametrize("interval", ["-1", "0", "nan", "soon"])
def test_the_sync_interval_must_be_a_positive_duration(worker, tmp_path, interval):
    alive = str(tmp_path / "alive")
    with pytest.raises(CommandError, match="--sync-interval"):
        rollout("controller", f"--sync-interval={interval}", "--alive-file", alive)


def test_apply_wait_follows_the_rollout_and_exits_0_when_completed(worker, engine):
    def engine_updates(engine, service):
        engine.set_update(service, "completed", "update completed")
        engine.replace_tasks(service)

    engine.on_write = engine_updates

    out = rollout(
        "apply", "worker", "--image-tag", "1.1", "--update-parallelism", "2", "--wait"
    )

    assert "queued by the command line: rollout apply worker --image-tag 1.1" in out
    assert "2 of 2 tasks running dockercoins:1.1" in out
    assert "dockercoins_worker: completed in" in out


def test_an_apply_naming_its_tag_looks_up_that_tag_not_the_whole_inventory(
    worker, engine, monkeypatch
):
    # Listing every image takes 0.15 s on an engine with 200 of them: a
    # tenth of what `apply --wait` adds to a one-task update. A tag built or
    # rebuilt since the last sync is still seen, by its identity now.
    listed = []
    monkeypatch.setattr(engine, "images", lambda: listed.append(1) or [])
    engine.add_image("dockercoins:1.2")

    rollout("apply", "worker", "--image-tag", "1.2")

    assert listed == []
    [image] = [i for i in engine.image_list if "dockercoins:1.2" in i["RepoTags"]]
    revision = worker.revisions.order_by("-number").first()
    assert (revision.spec["tag"], revision.image_id) == ("1.2", image["Id"])


def test_a_malformed_image_is_refused_in_the_validations_words(worker, engine):
    # The one-tag lookup must not ask the engine first: its answer is
    # "invalid reference format" (CI found it on the real stack).
    with pytest.raises(CommandError, match="is not a valid image reference"):
        rollout("apply", "worker", "--image", "no such/image!")
    assert engine.writes == []


def test_an_apply_of_a_tag_the_engine_lacks_names_the_tags_it_has(worker, engine):
    with pytest.raises(CommandError) as refused:
        rollout("apply", "worker", "--image-tag", "9.9")

    assert "image dockercoins:9.9 is not on the swarm's engine" in str(refused.value)
    assert "known tags: 1.0, 1.1, bugged" in str(refused.value)
    assert engine.writes == []


def test_apply_wait_exits_non_zero_with_the_reason_when_rolled_back(worker, engine):
    def engine_rolls_back(engine, service):
        if service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].endswith("bugged"):
            engine.add_task(service, 1, "failed", err="task: non-zero exit (1)")
            service["Spec"] = service.pop("PreviousSpec")
            engine.set_update(service, "rollback_completed", "rollback completed")

    engine.on_write = engine_rolls_back

    with pytest.raises(CommandError) as raised:
        rollout(
            "apply",
            "worker",
            "--image-tag",
            "bugged",
            "--update-failure-action",
            "rollback",
            "--update-max-failure-ratio",
            "0.2",
            "--update-monitor",
            "20s",
            "--wait",
        )

    assert str(raised.value).startswith(
        "dockercoins_worker: rollout #1 rolled back: rolled back by the engine"
    )
    assert "task: non-zero exit (1)" in str(raised.value)


def test_apply_without_wait_leaves_the_watching_to_the_controller(worker, engine):
    out = rollout("apply", "worker", "--replicas", "3")

    assert "the controller watches it from here" in out
    applied = Rollout.objects.get()
    assert applied.state == RolloutState.WATCHING
    engine.add_task(engine.service("dockercoins_worker"), 3, "running")
    Controller(owner="controller", client=engine.client()).handle_one()
    applied.refresh_from_db()
    assert applied.state == RolloutState.COMPLETED


def test_apply_runs_a_rollout_queued_in_the_admin(worker, engine):
    from rollouts.records.requests import service_scale

    queued = service_scale(service=worker, user=None, replicas=3)
    engine.on_write = lambda engine, service: engine.add_task(service, 3, "running")

    out = rollout("apply", "--wait")

    queued.refresh_from_db()
    assert queued.state == RolloutState.COMPLETED
    assert "dockercoins_worker: completed in" in out


def test_a_second_apply_is_refused_while_one_is_running(worker):
    rollout("apply", "worker", "--replicas", "3")
    with pytest.raises(CommandError, match=r"already has rollout #1 \(watching\)"):
        rollout("apply", "worker", "--replicas", "4")


def test_a_paused_failed_update_is_resumed_only_with_resume(worker, engine):
    svc = engine.service("dockercoins_worker")
    svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = "dockercoins:bugged"
    engine.set_update(svc, "paused", "update paused due to failure")
    Service.objects.filter(pk=worker.pk).update(tag="bugged")

    with pytest.raises(CommandError) as refused:
        rollout("scale", "worker", "3", "--cause", "more")

    assert str(refused.value).startswith(
        "dockercoins_worker runs a paused failed update of "
        "dockercoins:bugged (update paused due to failure)"
    )
    assert not Rollout.objects.exists()
    rollout("scale", "worker", "3", "--cause", "more", "--resume")
    assert Rollout.objects.get().revision.spec["replicas"] == 3


def test_scale_rollback_and_undo(worker, engine):
    rollout("scale", "worker", "3", "--cause", "more miners")
    Rollout.objects.update(state=RolloutState.COMPLETED)

    out = rollout("undo", "worker")
    assert "undo to revision 1" in out
    Rollout.objects.update(state=RolloutState.COMPLETED)
    assert engine.service("dockercoins_worker")["Spec"]["Mode"] == {
        "Replicated": {"Replicas": 2}
    }

    rollout("rollback", "worker")
    assert engine.writes[-1]["params"]["rollback"] == "previous"


def test_status_is_a_table_of_services_and_active_rollouts(worker):
    rollout("apply", "worker", "--replicas", "3")
    lines = rollout("status").splitlines()
    assert lines[0].split() == [
        "SERVICE",
        "IMAGE",
        "MODE",
        "RUNNING",
        "UPDATE",
        "ROLLOUT",
    ]
    assert lines[2].split() == [
        "dockercoins_worker",
        "dockercoins:1.0",
        "replicated",
        "2/3",
        "-",
        "#1",
        "watching",
        "0/0",
    ]


def test_status_shows_the_recorded_state_when_the_engine_is_away(worker, engine):
    engine.down = True
    assert "dockercoins_worker" in rollout("status")


def test_history_lists_revisions_and_rollouts(worker, engine):
    rollout("apply", "worker", "--replicas", "3", "--cause", "two is not enough")
    out = rollout("history", "worker")
    assert "two is not enough" in out
    assert "imported from the swarm" in out
    assert "#1       apply  2    watching" in out


def test_the_controller_backs_off_on_errors_and_stops_on_sigterm(
    worker, monkeypatch, tmp_path
):
    calls = []

    def handle_one(self):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("no such table: rollouts_rollout")
        if len(calls) == 2:
            raise SwarmUnreachable("Docker engine unreachable at unix:///x")
        os.kill(os.getpid(), signal.SIGTERM)
        return False

    sleeps = []
    monkeypatch.setattr(Controller, "handle_one", handle_one)
    monkeypatch.setattr(
        Controller, "sleep", lambda self, seconds: sleeps.append(seconds)
    )
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    alive = tmp_path / "alive"
    try:
        rollout("controller", "--alive-file", str(alive))
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])

    assert len(calls) == 3
    # Each kind of trouble backs off on its own, then the idle nap.
    assert sleeps == [1.0, 1.0, 1]
    assert alive.exists()


def test_a_stop_cuts_the_controllers_sleep_short(engine, monkeypatch):
    controller = Controller(owner="a", client=engine.client())
    slices = []

    def one_slice(seconds):
        slices.append(seconds)
        controller.request_stop()  # SIGTERM arrives during the first slice

    monkeypatch.setattr("rollouts.control.controller.time.sleep", one_slice)
    controller.sleep(30)

    assert slices == [1.0]  # one 1 s slice, not 30 s


LOST = "consuming input failed: server closed the connection unexpectedly"


def test_apply_wait_rides_out_a_database_restart_and_exits_with_the_outcome(
    worker, engine, monkeypatch
):
    def engine_updates(engine, service):
        engine.set_update(service, "completed", "update completed")
        engine.replace_tasks(service)

    engine.on_write = engine_updates
    real_drive = terminal.drive
    calls, dropped = [], []

    def drive(**kwargs):
        calls.append(1)
        if len(calls) in (2, 3):  # the first two rounds of --wait
            raise OperationalError(LOST)
        return real_drive(**kwargs)

    monkeypatch.setattr(terminal, "drive", drive)
    monkeypatch.setattr(
        terminal.database, "drop_broken_connections", lambda: dropped.append(1)
    )

    out = rollout("apply", "worker", "--image-tag", "1.1", "--wait")

    assert f"database unreachable ({LOST}); retrying" in out
    assert out.count("database unreachable") == 1  # one line per outage
    assert "the database answers again" in out
    assert "dockercoins_worker: completed in" in out
    assert len(dropped) == 2  # a new connection for every try
    assert "run `manage.py migrate`" not in out


def test_apply_wait_gives_up_on_a_database_that_stays_away(worker, engine, monkeypatch):
    real_drive = terminal.drive
    calls = []

    def drive(**kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OperationalError(LOST)
        return real_drive(**kwargs)

    monkeypatch.setattr(terminal, "drive", drive)
    monkeypatch.setattr(terminal, "DATABASE_PATIENCE", -1.0)

    with pytest.raises(CommandError) as raised:
        rollout("apply", "worker", "--image-tag", "1.1", "--wait")

    message = str(raised.value)
    assert message.startswith(f"database unreachable ({LOST}) for ")
    assert "a running controller watches it" in message


def test_a_database_that_does_not_answer_is_not_a_missing_migration(
    worker, monkeypatch
):
    def lost(**kwargs):
        raise OperationalError("the connection is lost")

    monkeypatch.setattr("rollouts.records.selectors.service_get", lost)

    with pytest.raises(CommandError) as raised:
        rollout("history", "worker")

    assert str(raised.value) == "database unreachable (the connection is lost)"


def test_a_missing_table_still_says_to_migrate(worker, monkeypatch):
    def missing(**kwargs):
        raise OperationalError("no such table: rollouts_service")

    monkeypatch.setattr("rollouts.records.selectors.service_get", missing)

    with pytest.raises(CommandError) as raised:
        rollout("history", "worker")

    assert str(raised.value) == (
        "database not ready (no such table: rollouts_service); run `manage.py migrate`"
    )


@pytest.mark.parametrize(
    "canary, message",
    [
        ("2", "--canary: 2 canary task(s) must be fewer than the 2 replica(s)"),
        ("5", "0 turns the canary step off"),
        ("-1", "--canary: must be a whole number from 0 to 1000"),
    ],
)
def test_a_canary_that_leaves_no_old_task_is_refused_in_one_line(
    worker, engine, canary, message
):
    with pytest.raises(CommandError) as raised:
        rollout("apply", "worker", "--image-tag", "1.1", "--canary", canary)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert engine.writes == []


def test_canary_zero_turns_the_canary_step_off(worker, engine):
    rollout("apply", "worker", "--image-tag", "1.1", "--canary", "0")
    worker.refresh_from_db()
    assert worker.canary == 0


def test_plan_with_drift_only_never_says_it_matches_and_exits_1(worker, engine):
    # Outside: max replicas per node 5, our scale kept it, then outside reset it.
    applied = dict(worker.applied_spec)
    template = dict(applied["TaskTemplate"])
    template["Placement"] = {"MaxReplicas": 5}
    applied["TaskTemplate"] = template
    Service.objects.filter(pk=worker.pk).update(applied_spec=applied)
    out = io.StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("rollout", "plan", "worker", stdout=out)

    assert exited.value.code == 1
    lines = out.getvalue().splitlines()
    assert "  max replicas per node: 5 -> -" in lines
    assert not [line for line in lines if "matches" in line]
    assert lines[-2].startswith(
        "dockercoins_worker: applying changes nothing (the desired spec is what "
        "runs), but what runs differs from what we last applied"
    )
