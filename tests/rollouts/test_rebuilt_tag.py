"""Against the fake engine: the same tag, rebuilt, is rolled out
(the engine's ForceUpdate re-creates every task, and each node resolves the
tag again); "done" means the tasks run the image the revision names, by id."""

import io

import pytest
from django.core.management import call_command

from rollouts.control import driver
from rollouts.engine.sync import service_sync
from rollouts.models import Rollout, RolloutState
from rollouts.records import requests

pytestmark = pytest.mark.django_db

OLD = "sha256:" + "0" * 64


def running_the_old_build(engine) -> None:
    """Every running worker container runs OLD; the tag now names another."""
    for number, task in enumerate(engine.task_list):
        if task["Spec"]["ContainerSpec"]["Image"] == "dockercoins:1.0":
            task["Status"]["ContainerStatus"] = {"ContainerID": f"c{number}"}
            engine.containers[f"c{number}"] = OLD


def applied_again(worker, engine) -> Rollout:
    rollout = requests.service_change(
        service=worker, user=None, change_cause="rebuilt", tag="1.0", carry=["tag"]
    )
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    return rollout


def test_an_apply_of_a_rebuilt_tag_forces_every_task_to_be_re_created(worker, engine):
    running_the_old_build(engine)

    rollout = applied_again(worker, engine)

    assert engine.writes[-1]["task_template"]["ForceUpdate"] == 1
    said = rollout.events.get(message__startswith="updated: ").message
    assert "dockercoins:1.0 now names image " in said
    assert "2 task(s) run image 000000000000 (the tag was rebuilt)" in said


def test_it_completes_only_on_tasks_of_the_new_build(worker, engine):
    running_the_old_build(engine)
    rollout = applied_again(worker, engine)
    engine.tick()
    svc = engine.service("dockercoins_worker")
    engine.replace_tasks(svc)  # the forced update re-created them
    new_id = engine.image_list[0]["Id"]
    for number, task in enumerate(engine.task_list):
        if task["DesiredState"] == "running":
            task["Status"]["ContainerStatus"] = {"ContainerID": f"n{number}"}
            engine.containers[f"n{number}"] = new_id

    assert driver.rollout_watch_step(rollout=rollout, client=engine.client())

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED, rollout.reason


def test_tasks_left_on_the_old_build_are_never_done(worker, engine):
    rollout = applied_again(worker, engine)  # no container seen at the write
    running_the_old_build(engine)
    engine.tick()

    assert driver.rollout_watch_step(rollout=rollout, client=engine.client())

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.FAILED
    assert rollout.reason.startswith("2 of 2 tasks run image 000000000000, not ")
    assert "`rollout apply worker --image-tag 1.0` forces it" in rollout.reason


def plan_of_the_old_build(engine, monkeypatch) -> io.StringIO:
    """`rollout plan worker` while the tasks run the tag's earlier build."""
    running_the_old_build(engine)
    service_sync(client=engine.client())
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("rollout", "plan", "worker", stdout=out)
    return out


def test_plan_shows_a_rebuilt_tag_as_a_change(worker, engine, monkeypatch):
    out = plan_of_the_old_build(engine, monkeypatch)

    assert "  image build: dockercoins:1.0 (000000000000) -> dockercoins:1.0 (" in (
        out.getvalue()
    )


def test_plan_of_a_rebuilt_tag_estimates_a_rolling_update_of_every_task(
    worker, engine, monkeypatch
):
    out = plan_of_the_old_build(engine, monkeypatch)

    text = out.getvalue()
    assert "no rolling update" not in text
    assert (
        "expected duration: about 9s: a rolling update of every task (the tag was "
        "rebuilt), 2 batch(es) of up to 1 task(s), 0s apart, 5s monitor after the "
        "last, ~2s start-up per batch"
    ) in text
