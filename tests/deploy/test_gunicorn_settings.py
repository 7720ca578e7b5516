"""deploy/gunicorn.conf.py's choices that no slow-client test shows: the
connections of a worker take turns, and the files a worker touches all the
time live in memory (why: docs/performance.md, "The tails")."""

import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"


@pytest.fixture
def conf(monkeypatch) -> dict:
    monkeypatch.setenv("DOCKERCOINS_ROLE", "rng")
    return runpy.run_path(str(CONF))


class Request:
    headers: list[tuple[str, str]] = []  # a GET: no body to drain


def test_it_yields_to_the_workers_other_connections_after_each_request(
    conf, monkeypatch
):
    yields = []
    monkeypatch.setattr("gevent.sleep", lambda seconds=0: yields.append(seconds))

    conf["post_request"](None, Request(), {}, None)
    conf["post_request"](None, Request(), {}, None)

    assert yields == [0, 0]  # a yield to the hub, never a pause


def test_its_heartbeat_and_sample_files_live_in_memory_when_the_system_has_it(conf):
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm here")
    assert conf["worker_tmp_dir"] == "/dev/shm"
