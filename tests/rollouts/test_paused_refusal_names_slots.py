"""The paused-update refusal (records.requests.refuse_resuming_a_paused_update)
names the engine's task by its slot, never by a raw task id, and reads right on
the command line: no `--resume:` prefix the user never typed (trial, 12:01)."""

import io

import pytest
from django.core.management import CommandError, call_command

from rollouts.engine.sync import service_sync
from rollouts.models import Rollout, Service

pytestmark = pytest.mark.django_db

PAUSED = "update paused due to failure or early termination of task {}"


@pytest.fixture(autouse=True)
def fake_docker(engine, monkeypatch):
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )


def paused_on(engine, task_id: str) -> None:
    svc = engine.service("dockercoins_worker")
    svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = "dockercoins:bugged"
    engine.set_update(svc, "paused", PAUSED.format(task_id))
    Service.objects.filter(name="dockercoins_worker").update(tag="bugged")


def scale_refused() -> str:
    with pytest.raises(CommandError) as refused:
        call_command("rollout", "scale", "worker", "3", stdout=io.StringIO())
    return str(refused.value)


def test_it_names_the_paused_task_by_its_slot(worker, engine):
    task = engine.add_task(engine.service("dockercoins_worker"), 2, "failed")
    paused_on(engine, task["ID"])

    text = scale_refused()

    assert task["ID"] not in text
    assert f"termination of task dockercoins_worker.2 ({task['ID'][:12]})" in text
    assert not Rollout.objects.exists()


def test_it_names_a_task_the_engine_no_longer_lists_by_its_service(worker, engine):
    gone = "mv8ci73yxwnlvf9qa1sbxfqqi"
    paused_on(engine, gone)

    text = scale_refused()

    assert gone not in text
    assert "termination of task dockercoins_worker.? (mv8ci73yxwnl)" in text


def test_the_refusal_names_no_flag_typed_and_ends_with_the_way_to_resume(
    worker, engine
):
    paused_on(engine, "x")

    text = scale_refused()

    assert text.startswith("dockercoins_worker runs a paused failed update")
    assert text.endswith("or resume it on purpose (--resume)")


def test_every_face_reads_the_engines_message_with_slots(worker, engine):
    task = engine.add_task(engine.service("dockercoins_worker"), 1, "failed")
    paused_on(engine, task["ID"])
    service_sync(client=engine.client())
    message = Service.objects.get(name="dockercoins_worker").live_update_message
    assert message == PAUSED.format(f"dockercoins_worker.1 ({task['ID'][:12]})")


@pytest.mark.parametrize("subcommand", ["reapply", "undo"])
def test_resume_offered_by_the_refusal_is_honoured_by_reapply_and_undo(
    worker, engine, subcommand
):
    call_command("rollout", "scale", "worker", "3", stdout=io.StringIO())
    Rollout.objects.update(state="completed")
    paused_on(engine, "x")
    svc = engine.service("dockercoins_worker")
    svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = "dockercoins:1.0"
    Service.objects.filter(name="dockercoins_worker").update(tag="1.0")

    with pytest.raises(CommandError, match=r"resume it on purpose \(--resume\)$"):
        call_command("rollout", subcommand, "worker", stdout=io.StringIO())
    call_command("rollout", subcommand, "worker", "--resume", stdout=io.StringIO())
    assert Rollout.objects.filter(state="watching").exists()
