"""A Docker client for one engine, and the swarm that engine is in."""

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import docker

from deploy.polling import wait_until
from deploy.swarmops.procs import StackError, log

DEFAULT_HOST = "unix:///var/run/docker.sock"


def host_of(env: Mapping[str, str] | None = None) -> str:
    """The DOCKER_HOST `env` (over this process's environment) points at."""
    merged = {**os.environ, **(env or {})}
    return merged.get("DOCKER_HOST") or DEFAULT_HOST


@cache
def client(host: str = "") -> docker.DockerClient:
    """A client of the engine at `host` (DOCKER_HOST's form; "" = default)."""
    return docker.DockerClient(base_url=host or host_of(), timeout=120)


def answers(host: str = "") -> bool:
    try:
        return bool(client(host).ping())
    except Exception:  # refused, no socket yet, a 500 while it starts
        return False


def wait_answering(host: str = "", *, timeout: float = 90) -> None:
    """Wait until the engine answers; StackError after `timeout` seconds."""
    try:
        wait_until(
            lambda: answers(host),
            timeout=timeout,
            interval=0.5,
            message=f"the engine at {host or host_of()} to answer",
        )
    except AssertionError as exc:
        raise StackError(str(exc)) from exc


def has_ipvs() -> bool:
    """Without IPVS (some kernels, many CI machines) the VIPs and the ingress
    routing mesh pass no traffic: stacks need the no-ipvs override. `swarm
    init` loads the module, so ask once a swarm exists."""
    return Path("/proc/net/ip_vs").exists()


def ensure_swarm(host: str = "") -> None:
    """A single-node swarm on loopback unless this engine is already in one
    (then it is used as it is: a manager of a real cluster works too).

    Raises StackError when the swarm is pending, locked or in error.
    """
    engine = client(host)
    state = engine.info()["Swarm"]["LocalNodeState"]
    if state == "active":
        return
    if state != "inactive":
        raise StackError(
            f"swarm state is '{state}': fix it (docker swarm leave --force) and re-run"
        )
    log("creating a single-node swarm (docker swarm init --advertise-addr 127.0.0.1)")
    engine.swarm.init(advertise_addr="127.0.0.1")
    wait_until(
        lambda: engine.info()["Swarm"]["LocalNodeState"] == "active",
        timeout=30,
        message="the swarm to become active",
    )
