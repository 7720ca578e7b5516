"""Every refusal of `manage.py rollout` names what the user typed: the flag at
fault, the positional argument (REPLICAS), or the flag that gives a missing
consent, never a flag nobody typed (new-user trial, 11:49)."""

import io

import pytest
from django.core.management import CommandError, call_command

from rollouts.engine.sync import service_sync
from rollouts.management.commands.rollout import Command
from rollouts.models import Rollout

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_docker(engine, monkeypatch):
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("rollout", *args, stdout=io.StringIO(), stderr=io.StringIO())
    return str(refused.value)


@pytest.mark.parametrize("replicas", ["-3", "5000"])
def test_it_names_the_replicas_argument_of_scale_not_a_flag(worker, replicas):
    text = refusal("scale", "worker", replicas)
    assert text == "REPLICAS: must be a whole number from 0 to 1000"
    assert not Rollout.objects.exists()


def test_it_names_the_replicas_argument_when_scaling_a_global_service(engine, db):
    engine.add_service("dockercoins_agent", replicas=None)
    service_sync(client=engine.client())
    text = refusal("scale", "agent", "3")
    assert text.startswith("REPLICAS: dockercoins_agent is global")


def test_a_plain_undo_with_nothing_to_undo_names_no_flag(worker):
    text = refusal("undo", "worker")
    assert text == "dockercoins_worker has no earlier revision to undo to"


def test_an_undo_to_an_unknown_revision_names_the_flag_typed(worker):
    text = refusal("undo", "worker", "--to-revision", "9")
    assert text.startswith("--to-revision: dockercoins_worker has no revision 9")


def test_a_missing_consent_ends_with_the_flag_that_gives_it(worker):
    text = refusal("apply", "worker", "--mode", "global")
    assert text.startswith("changing dockercoins_worker from replicated to global")
    assert text.endswith("confirm it (--confirm-recreate)")


def test_an_unparseable_replicas_is_a_usage_error_naming_the_argument(worker, capsys):
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "rollout", "scale", "worker", "\u0663"])
    assert exited.value.code == 2
    assert "error: argument REPLICAS: " in capsys.readouterr().err


def test_an_empty_service_to_promote_is_refused_before_anything_is_asked(
    worker, capsys
):
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "rollout", "promote", "", "--cause", "x"])
    assert exited.value.code == 2
    assert "error: argument SERVICE: " in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--analysis", "bogus"),
        ("--analysis-mode", "maybe"),
        ("--mode", "sideways"),
        ("--update-failure-action", "explode"),
        ("--update-order", "random"),
        ("--deadline-action", "shrug"),
    ],
)
def test_an_unknown_choice_is_input_it_cannot_parse_exit_2(
    worker, engine, capsys, flag, value
):
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(
            ["manage.py", "rollout", "apply", "worker", flag, value]
        )
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}: {value!r} is not one of: " in err
    assert err.count("\n") == 1
    assert engine.writes == []
