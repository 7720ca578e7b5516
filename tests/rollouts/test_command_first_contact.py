"""The first things a user types into `manage.py rollout`: every `--help`, and
bad input refused in one line before the database or the engine is asked."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from rollouts.management.commands.rollout import Command

REPO = Path(__file__).resolve().parent.parent.parent


def subcommands() -> list[str]:
    parser = Command().create_parser("manage.py", "rollout")
    (choices,) = [
        action.choices
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    return sorted(choices)


def rollout_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py rollout ARGS` as a user runs it, on a host without the engine
    (the webui's role: no Docker socket), with an empty database of its own."""
    env = {
        **os.environ,
        "DOCKERCOINS_ROLE": "webui",
        "DOCKER_ENABLED": "0",
        "DATABASE_PATH": str(tmp_path / "db.sqlite3"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "rollout", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_knows_every_subcommand_of_the_readme() -> None:
    assert {"apply", "plan", "status", "undo", "scale", "controller"} <= set(
        subcommands()
    )


@pytest.mark.parametrize("subcommand", subcommands())
def test_it_prints_the_help_of_every_subcommand(subcommand, capsys) -> None:
    # A "%" in a generated help text ("0.2 = 20%") once crashed argparse here.
    with pytest.raises(SystemExit) as exited:
        call_command("rollout", subcommand, "--help")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and subcommand in out.splitlines()[0]


def test_an_empty_service_name_is_one_line_and_a_non_zero_exit(tmp_path) -> None:
    done = rollout_cli(tmp_path, "apply", "", "--replicas", "2")
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "'' is not a service name" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_it_reports_the_tags_grammar_before_looking_for_the_engine(
    tmp_path,
) -> None:
    done = rollout_cli(tmp_path, "apply", "worker", "--image-tag", "bad tag")
    assert done.returncode != 0
    assert "'bad tag' is not a valid image tag" in done.stderr
    assert "Docker socket" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr


@pytest.mark.parametrize("stack", ["", "a b", "../x", "x/y"])
def test_a_stack_name_the_engine_cannot_have_is_one_line_and_exit_2(
    tmp_path, stack
) -> None:
    done = rollout_cli(tmp_path, "status", "--stack", stack)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f"{stack!r} is not a stack name" in done.stderr
