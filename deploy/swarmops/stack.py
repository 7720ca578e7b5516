"""A DockerCoins stack on the swarm: deploy it from our compose files, wait
until it converged, remove it until nothing is left, prune test stacks that
lost their owner. Every wait has a deadline.

Image tags, ports and replicas come from the environment the caller passes
(DOCKERCOINS_IMAGE, DOCKERCOINS_TAG, WORKER_TAG, WORKER_REPLICAS, WEBUI_PORT,
RNG_PORT, HASHER_PORT); DOCKER_HOST in it names the manager to deploy on.
"""

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import docker

from deploy.polling import wait_until
from deploy.swarmops import engine
from deploy.swarmops.layout import (
    BENCH_PREFIX,
    BUILD_DIR,
    DB_NODE_LABEL,
    DEPLOY_DIR,
    OWNERS_DIR,
    SERVICE_LABEL,
    STACK_LABEL,
    TEST_PREFIX,
)
from deploy.swarmops.procs import StackError, log, run

CONVERGE_TIMEOUT = 300
REMOVE_TIMEOUT = 180
# Update states in which a service is still moving.
ROLLING = ("updating", "rollback_started")


def _labelled(name: str) -> dict[str, str]:
    return {"label": f"{STACK_LABEL}={name}"}


def client_for(env: Mapping[str, str] | None) -> docker.DockerClient:
    return engine.client(engine.host_of(env))


# --- deploying -----------------------------------------------------------


def ensure_secret_file(name: str, nbytes: int, what: str) -> Path:
    """The file behind one of the stack's Swarm secrets, made once and kept:
    a Swarm secret cannot change while a stack uses it."""
    path = BUILD_DIR / name
    if path.exists() and path.stat().st_size > 0:
        return path
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(nbytes))
    log(f"generated {path} ({what})")
    return path


def ensure_db_label(client: docker.DockerClient) -> None:
    """PostgreSQL's volume is node-local, so its service is pinned to the node
    labelled dockercoins.db=true: label this engine's node when no node is
    (the lab labels node-0 itself). A worker node cannot list nodes: then the
    managers' labels stand as they are."""
    try:
        if client.nodes.list(filters={"node.label": f"{DB_NODE_LABEL}=true"}):
            return
        node = client.nodes.get(client.info()["Swarm"]["NodeID"])
    except docker.errors.APIError:
        return
    spec = node.attrs["Spec"]
    spec["Labels"] = {**spec.get("Labels", {}), DB_NODE_LABEL: "true"}
    node.update(spec)
    log("labelled this node dockercoins.db=true (the database's volume lives here)")


def live_modes_override(client: docker.DockerClient, name: str) -> Path | None:
    """A compose override that keeps each service's live mode, or None.

    An operator may have made a service global (the workshop's step 4, from
    the admin or `manage.py rollout`); the engine refuses to change a mode in
    place ("service mode change is not allowed"), so a re-deploy keeps it.
    Raises StackError when the stack file pins the replicas of a global one.
    """
    services: dict[str, Any] = {}
    for service in client.services.list(filters={**_labelled(name), "mode": "global"}):
        short = service.name.removeprefix(f"{name}_")
        if short == "worker":
            raise StackError(
                f"service {service.name} is global in the swarm but the stack file"
                " sets its replicas: make it replicated first (make rollout"
                f" ARGS='apply {short} --mode replicated --confirm-recreate')"
                " and re-run"
            )
        services[short] = {"deploy": {"mode": "global"}}
        log(
            f"keeping {service.name} global, as it runs now"
            " (the engine cannot change a mode in place)"
        )
    if not services:
        return None
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    path = BUILD_DIR / f"live-modes-{name}.yml"
    # JSON is YAML: the compose loader reads it as it is.
    path.write_text(json.dumps({"version": "3.8", "services": services}, indent=2))
    return path


@cache
def _cli_has_detach() -> bool:
    # Newer CLIs ask for --detach explicitly (and print a notice without it).
    return "--detach" in run(["docker", "stack", "deploy", "--help"])


def deploy(
    name: str, env: Mapping[str, str] | None = None, *, compose_dir: Path = DEPLOY_DIR
) -> None:
    """Deploy or update stack `name` from the compose files in `compose_dir`
    (`docker stack deploy`: the SDK has no stacks); returns before it
    converged (see wait).

    Raises StackError with the CLI's output when the engine refuses it.
    """
    client = client_for(env)
    ensure_secret_file("secret_key", 32, "the stack's SECRET_KEY secret")
    ensure_secret_file("db_password", 24, "the stack's PostgreSQL password secret")
    ensure_db_label(client)
    files = [compose_dir / "docker-compose.yml"]
    if not engine.has_ipvs():
        log("no IPVS on this kernel: deploying with docker-compose.no-ipvs.yml")
        files.append(compose_dir / "docker-compose.no-ipvs.yml")
    override = live_modes_override(client, name)
    if override:
        files.append(override)
    args = ["docker", "stack", "deploy", "--prune", "--resolve-image", "never"]
    for file in files:
        args += ["-c", str(file)]
    if _cli_has_detach():
        args.append("--detach=true")  # we wait ourselves, with wait()
    # --resolve-image never: our images are local, there is no registry to ask.
    run(
        [*args, name],
        env=deploy_env(name, env),
        timeout=180,
    )


def deploy_env(name: str, env: Mapping[str, str] | None) -> dict[str, str]:
    """The variables `docker stack deploy` reads, with the defaults a stack
    file cannot nest: WORKER_TAG falls back to the tag, and the links in
    webhook bodies (WEBHOOK_PUBLIC_URL) to the webui's published port."""
    merged = {**os.environ, **(env or {})}
    tag = merged.get("WORKER_TAG") or merged.get("DOCKERCOINS_TAG") or "1.0"
    public = merged.get("WEBHOOK_PUBLIC_URL") or (
        f"http://localhost:{merged.get('WEBUI_PORT') or '8000'}"
    )
    return {
        **(env or {}),
        "STACK_NAME": name,
        "WORKER_TAG": tag,
        "WEBHOOK_PUBLIC_URL": public,
    }


def restart_rebuilt(
    name: str, hosts: list[str], env: Mapping[str, str] | None = None
) -> None:
    """Restart the services whose containers (on any of `hosts`) do not run
    the image their tag names now: a re-deploy with the same tags leaves the
    services alone after build-images.sh rebuilt them (without a registry
    there is no digest in the spec to change)."""
    client = client_for(env)
    stale = []
    for service in client.services.list(filters=_labelled(name)):
        image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        try:
            want = client.images.get(image.split("@")[0]).id
        except docker.errors.ImageNotFound:
            continue
        for host in hosts:
            running = engine.client(host).containers.list(
                filters={"label": f"{SERVICE_LABEL}={service.name}"}
            )
            if any(c.attrs["Image"] != want for c in running):
                stale.append(service)
                break
    for service in stale:
        log(f"restarting {service.name} on the rebuilt image")
        _force_update(service)


def _force_update(service: Any) -> None:
    """Restart every task of `service`; return once the update shows in its
    UpdateStatus (what wait() reads), or after 10 s."""
    version = service.version
    service.force_update()
    # An update that never shows there: wait() sees the service converge.
    with contextlib.suppress(AssertionError):
        wait_until(lambda: _reloaded(service, version), timeout=10)


def _reloaded(service: Any, version: int) -> bool:
    service.reload()
    return bool(service.version > version and service.attrs.get("UpdateStatus"))


# --- converging ----------------------------------------------------------


def pending(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The services of stack `name` not converged yet, one line each ([] when
    all are): running tasks short of desired (a task counts as running only
    once its container is healthy), or an update still rolling."""
    services = client_for(env).services.list(filters=_labelled(name), status=True)
    if not services:
        return ["(no services)"]
    lines = []
    for service in services:
        status = service.attrs.get("ServiceStatus", {})
        running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
        if running != desired:
            lines.append(f"{service.name} {running}/{desired}")
        state = service.attrs.get("UpdateStatus", {}).get("State", "")
        if state in ROLLING:
            lines.append(f"{service.name} {state}")
    return sorted(lines)


def wait(
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = CONVERGE_TIMEOUT,
) -> None:
    """Wait until every service of the stack converged.

    Raises StackError naming what is still pending, with its tasks' states
    and errors, when `timeout` seconds pass first.
    """
    try:
        wait_until(
            lambda: not pending(name, env), timeout=timeout, interval=2, message=name
        )
    except AssertionError as exc:
        raise StackError(
            f"stack {name} did not converge within {timeout:g}s:\n"
            + "\n".join(pending(name, env) + _task_states(name, env))
        ) from exc
    log(f"stack {name} converged")


def _task_states(name: str, env: Mapping[str, str] | None) -> list[str]:
    rows = []
    for service in client_for(env).services.list(filters=_labelled(name)):
        for task in service.tasks():
            status = task.get("Status", {})
            image = task["Spec"]["ContainerSpec"]["Image"].split("@")[0]
            rows.append(
                f"  {service.name}.{task.get('Slot', '')} {image}"
                f" {status.get('State')} {status.get('Err', '')}".rstrip()
            )
    return rows


# --- removing ------------------------------------------------------------


def leftovers(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """What of stack `name` is still on the engine: services, containers,
    networks, secrets and configs."""
    client = client_for(env)
    flt = _labelled(name)
    kinds: list[tuple[str, Any]] = [
        ("service", client.services.list(filters=flt)),
        ("container", client.containers.list(all=True, filters=flt)),
        ("network", client.networks.list(filters=flt)),
        ("secret", client.secrets.list(filters=flt)),
        ("config", client.configs.list(filters=flt)),
    ]
    return [f"{kind} {item.name}" for kind, items in kinds for item in items]


def _remove_once(client: docker.DockerClient, name: str) -> None:
    """What `docker stack rm` does; a network still in use is skipped (and
    removed on a later round, once its containers are gone)."""
    flt = _labelled(name)
    for service in client.services.list(filters=flt):
        _quietly(service.remove)
    if client.containers.list(all=True, filters=flt):
        return
    for item in [
        *client.networks.list(filters=flt),
        *client.secrets.list(filters=flt),
        *client.configs.list(filters=flt),
    ]:
        _quietly(item.remove)


def _quietly(action: Any) -> None:
    try:
        action()
    except docker.errors.NotFound:
        pass  # gone meanwhile: that is what we want
    except docker.errors.APIError as exc:
        if exc.status_code not in (409, 500):  # in use: a later round
            raise


def remove(
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    volumes: bool = False,
    timeout: float = REMOVE_TIMEOUT,
) -> None:
    """Remove the stack and wait until its services, containers, networks and
    secrets are gone; `volumes` also removes its named volumes (the database:
    test stacks do, `make down` does not).

    Raises StackError naming what is left after `timeout` seconds.
    """
    client = client_for(env)

    def gone() -> bool:
        _remove_once(client, name)
        return not leftovers(name, env)

    try:
        wait_until(gone, timeout=timeout, interval=1, message=f"stack {name} to go")
    except AssertionError as exc:
        left = "\n".join(leftovers(name, env))
        raise StackError(
            f"stack {name}: left behind after {timeout:g}s:\n{left}"
        ) from exc
    if volumes:
        for volume in client.volumes.list(filters=_labelled(name)):
            volume.remove()
    log(f"stack {name} removed")


# --- test and bench stacks -----------------------------------------------


def owner_file(name: str) -> Path:
    """Where a test or bench stack's owner pid is kept while it runs."""
    return OWNERS_DIR / name


def _owner_alive(name: str) -> int:
    try:
        pid = int(owner_file(name).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return 0
    return pid


def _is_test_stack(name: str) -> bool:
    return name.startswith((TEST_PREFIX, BENCH_PREFIX))


def prune_tests(env: Mapping[str, str] | None = None) -> None:
    """Remove test and bench stacks (and their volumes) whose run was killed
    before it could clean up: no live owner process."""
    client = client_for(env)
    stacks = {
        s.attrs["Spec"].get("Labels", {}).get(STACK_LABEL, "")
        for s in client.services.list(filters={"label": STACK_LABEL})
    }
    for name in sorted(s for s in stacks if _is_test_stack(s)):
        pid = _owner_alive(name)
        if pid:
            log(f"keeping stack {name}: its test run (pid {pid}) is still going")
            continue
        log(f"removing stale stack {name}")
        try:
            remove(name, env, volumes=True)
        except StackError as exc:
            log(str(exc))
        owner_file(name).unlink(missing_ok=True)
    # Volumes of stacks that were removed, but not their volumes.
    for volume in client.volumes.list(filters={"label": STACK_LABEL}):
        name = (volume.attrs.get("Labels") or {}).get(STACK_LABEL, "")
        if _is_test_stack(name) and name not in stacks:
            _quietly(volume.remove)
