"""A bad setting stops a process at start, in one line naming the variable
(issue 16): manage.py, gunicorn, and migrate_locked's waits."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockercoins.startup import EXIT_CONFIG

REPO = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("WORKER_DELAY", "abc", "is not a number"),
        ("WORKER_DELAY", "1_000", "is not a number"),
        ("WORKER_DELAY", "1e3", "is not a number"),
        ("WORKER_DELAY", "61", "must be at most 60"),
        ("RNG_DELAY", "nan", "is not a number"),
        ("LOGIN_FAILURE_LIMIT", "٣", "is not a whole number"),
        ("REDIS_URL", "notaurl", "is not a URL starting with redis://"),
        ("REDIS_URL", "redis://:6379/0", "names no host"),
        ("REDIS_URL", "redis://redis:99999/0", "Port out of range"),
        ("SECRET_KEY_FILE", "/nonexistent/secret", "No such file"),
        ("WEBHOOK_BACKOFF", "5,ten,30", "'ten' is not a number"),
        ("WEBHOOK_BACKOFF", "5,,30", "is not a number"),
        ("WEBHOOK_BACKOFF", "0,5", "must be at least"),
        ("WEBHOOK_RETRY_FOR", "0", "must be at least"),
        ("WEBHOOK_CONCURRENCY", "0", "must be at least"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(name, value, reason):
    done = run([sys.executable, "manage.py", "check"], **{name: value})

    assert done.returncode == EXIT_CONFIG
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"manage.py: bad setting: {name}=")
    assert reason in line


def test_webhook_retries_may_last_days():
    done = run(
        [sys.executable, "manage.py", "check"],
        WEBHOOK_RETRY_FOR="172800",
        WEBHOOK_BACKOFF="1,2,5",
    )

    assert done.returncode == 0, done.stderr


def test_an_empty_secret_file_is_refused_like_a_missing_one(tmp_path):
    empty = tmp_path / "secret_key"
    empty.write_text("\n")

    done = run([sys.executable, "manage.py", "check"], SECRET_KEY_FILE=str(empty))

    assert done.returncode == EXIT_CONFIG
    assert done.stderr.strip() == (
        f"manage.py: bad setting: SECRET_KEY_FILE='{empty}': the file is empty"
    )


def test_gunicorn_refuses_a_bad_setting_in_its_master_in_one_line():
    done = run(
        [
            GUNICORN,
            "-c",
            "deploy/gunicorn.conf.py",
            "-b",
            "127.0.0.1:0",
            "dockercoins.wsgi",
        ],
        DOCKERCOINS_ROLE="hasher",
        REDIS_URL="notaurl",
    )

    assert done.returncode == EXIT_CONFIG
    assert "gunicorn: bad setting: REDIS_URL='notaurl'" in done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr


@pytest.mark.parametrize("wait", ["nan", "inf", "٣", "1e3", "-1", "3601"])
def test_migrate_locked_takes_its_wait_in_the_shared_grammar_and_bounds(wait):
    done = run([sys.executable, "manage.py", "migrate_locked", "--wait", wait])

    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("manage.py migrate_locked: error: argument --wait: ")


def test_an_unwritable_database_path_is_refused_at_once():
    done = run(
        [sys.executable, "manage.py", "migrate_locked", "--wait", "60"],
        DATABASE_PATH="/proc/dockercoins.sqlite3",
    )

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "CommandError: DATABASE_PATH=/proc/dockercoins.sqlite3: not writable by "
        "this process (No such file or directory)"
    )


def test_a_long_running_command_still_collects_garbage_after_its_fast_start():
    # manage.py pauses the collector while Django starts (dockercoins.startup):
    # `mine` and `rollout controller` run for weeks, so it must be back on,
    # with the start-up heap frozen out of every later pass.
    done = run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import gc; print(gc.isenabled(), gc.get_freeze_count() > 1000)",
        ]
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split() == ["True", "True"]
