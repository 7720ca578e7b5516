"""Fixtures for the mining tests: rng and hasher served for real on loopback.

They run exactly as the image runs them (gunicorn dockercoins.wsgi with
deploy/gunicorn.conf.py and DOCKERCOINS_ROLE set), with every delay at 0 so
tests are fast.
"""

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.polling import wait_until
from mining import fastpath, store
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
CONFIG = str(ROOT / "deploy" / "gunicorn.conf.py")


@dataclass
class Served:
    url: str
    process: subprocess.Popen


def serve_role(role: str, *args: str, log: Path | None = None, **env: str) -> Served:
    """Start `role` under gunicorn as the image does, on a free loopback port
    (`args`: more gunicorn options; `log`: a file for its stderr); wait until
    it answers."""
    port = free_port()
    output = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [GUNICORN, "dockercoins.wsgi", "--config", CONFIG]
        + ["--bind", f"127.0.0.1:{port}", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DOCKERCOINS_ROLE": role,
            "RNG_DELAY": "0",
            "HASHER_DELAY": "0",
            **env,
        },
        stdout=output,
        stderr=output,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"gunicorn for {role} exited with {process.returncode}")
        with urllib.request.urlopen(url + "/", timeout=2) as response:
            return response.status == 200

    wait_until(answers, timeout=30, message=f"{role} to answer on {url}")
    return Served(url=url, process=process)


def stop(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(timeout=10)


@dataclass
class Pipeline:
    rng_url: str
    hasher_url: str


@pytest.fixture(scope="session")
def pipeline() -> Iterator[Pipeline]:
    """A real rng and hasher, served as in the image."""
    rng = serve_role("rng")
    try:
        hasher = serve_role("hasher")
    except BaseException:
        stop(rng)
        raise
    yield Pipeline(rng_url=rng.url, hasher_url=hasher.url)
    stop(rng)
    stop(hasher)


@pytest.fixture(autouse=True)
def fresh_store_pool() -> Iterator[None]:
    """Each test gets its own Redis pool (tests point REDIS_URL elsewhere)
    and no /json answer cached by an earlier test."""
    store.reset()
    fastpath.forget()
    yield
    store.reset()
    fastpath.forget()
