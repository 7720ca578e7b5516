"""`manage.py migrate_locked` against a real PostgreSQL: every webui and
controller replica runs it at start, so two at once must both succeed and
apply each migration exactly once."""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ON_CI, free_port

REPO = Path(__file__).resolve().parent.parent.parent


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    initdb, pg_ctl, psql = _pg_bin("initdb"), _pg_bin("pg_ctl"), shutil.which("psql")
    if not (initdb and pg_ctl and psql):
        if ON_CI:
            pytest.fail("PostgreSQL is not installed (deploy/bootstrap.sh --test)")
        pytest.skip(
            "SKIPPING: PostgreSQL is not installed (deploy/bootstrap.sh --test)"
        )
    data = tempfile.mkdtemp(prefix="dockercoins-pg-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = str(free_port())
    subprocess.run(
        _as_postgres([initdb, "-D", data, "-U", "dockercoins", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    # The server inherits pg_ctl's stdout: a log file, not our pipe, or
    # run() would wait for the server to exit.
    log = f"{data}/server.log"
    subprocess.run(
        _as_postgres(
            [pg_ctl, "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": port}
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", data, "-m", "fast", "-w", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(data, ignore_errors=True)


def psql(server: dict[str, str], database: str, sql: str) -> str:
    done = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            server["POSTGRES_PORT"],
            "-U",
            "dockercoins",
            "-d",
            database,
            "-tA",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_two_replicas_migrating_at_once_both_succeed_once(postgres):
    psql(postgres, "postgres", "CREATE DATABASE race")
    env = {
        **os.environ,
        **postgres,
        "POSTGRES_DB": "race",
        "POSTGRES_USER": "dockercoins",
    }
    replicas = [
        subprocess.Popen(
            [sys.executable, "manage.py", "migrate_locked", "--wait", "30"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [replica.communicate(timeout=180)[0] for replica in replicas]
    assert [r.returncode for r in replicas] == [0, 0], outputs
    twice = psql(
        postgres,
        "race",
        "SELECT app, name FROM django_migrations"
        " GROUP BY app, name HAVING count(*) > 1",
    )
    assert twice == ""
    # One replica applied them all, the other found nothing to do.
    assert sum("No migrations to apply" in out for out in outputs) == 1, outputs


def test_it_says_in_one_line_when_the_database_never_answers():
    env = {
        **os.environ,
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate_locked", "--wait", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    first, *_, last = done.stderr.strip().splitlines()
    # It says what it waits for at once, not after the whole wait.
    assert first.startswith("waiting for PostgreSQL at POSTGRES_HOST=127.0.0.1:")
    assert last.startswith("CommandError: PostgreSQL at POSTGRES_HOST=127.0.0.1:")
    assert "did not answer within 2s" in last
    assert "Traceback" not in done.stderr
