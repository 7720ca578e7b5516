"""`make up` and `make down` once deploy/bootstrap.sh and build-images.sh ran
(deploy/up.sh, deploy/down.sh): the stack on this engine's swarm, or on a lab
of N engines on this machine."""

import os
import secrets
import time
from collections.abc import Mapping

from deploy.swarmops import engine, lab, stack
from deploy.swarmops.controller import RunningTask, require
from deploy.swarmops.procs import StackError, log


def _admin_code(user: str, action: str) -> str:
    return (
        "import sys; from django.contrib.auth import get_user_model as m; "
        f"user = {user!r}; {action}"
    )


ADMIN_EXISTS = "sys.exit(0 if m().objects.filter(username=user).exists() else 1)"
# The password comes in on stdin: never in a command line that `ps` shows.
ADMIN_CREATE = (
    "m().objects.create_superuser(user, user + '@localhost',"
    " sys.stdin.readline().strip())"
)


def _ports(env: Mapping[str, str]) -> tuple[str, str, str, str]:
    return (
        env.get("WEBUI_PORT") or "8000",
        env.get("RNG_PORT") or "8001",
        env.get("HASHER_PORT") or "8002",
        env.get("PROMETHEUS_PORT") or "9090",
    )


def lab_up(nodes: int, env: dict[str, str]) -> None:
    """The lab of `nodes` engines, kept when it is up with that many (a re-run
    only reloads the images, which may have been rebuilt), formed anew
    otherwise, leftovers of a killed run included. Points env's DOCKER_HOST
    at node-0."""
    if lab.active(env) and lab.lab_sh("nodes", env=env).strip() == str(nodes):
        log(f"lab {env['LAB_ID']}: {nodes} nodes up already; reloading the images")
        lab.load_images(env)
    else:
        lab.lab_sh("up", str(nodes), env=env, timeout=900, capture=False)
    env["DOCKER_HOST"] = lab.hosts(env)[0]


def create_admin(webui: RunningTask, user: str) -> None:
    """A superuser with a generated password, printed this once. Its existence
    is the only state: re-runs say so and leave it alone."""
    shell = ("python", "manage.py", "shell", "-c")
    try:
        webui.exec(*shell, _admin_code(user, ADMIN_EXISTS))
    except StackError:
        password = secrets.token_hex(12)
        webui.exec(*shell, _admin_code(user, ADMIN_CREATE), stdin=password + "\n")
        print(f"Created admin user '{user}' with password: {password}")
        print("  (shown this once; it is not stored anywhere in clear)")
        return
    print(
        f"Admin user '{user}' already exists (its password was printed when it"
        " was created;\n  reset it with: DOCKER_HOST="
        f"{webui.host} docker exec -it {webui.container[:12]}"
        f" python manage.py changepassword {user})"
    )


def print_lab(name: str, nodes: int, env: Mapping[str, str]) -> None:
    print()
    print(lab.lab_sh("status", env=env), end="")
    lab.lab_sh("forward", *_ports(env), env=env, capture=False)
    on = 1 if nodes >= 3 else 0  # with 2 nodes, node-1 is a worker: no swarm API
    print(
        f"  on node-{on}:  DOCKER_HOST={lab.hosts(env)[on]}"
        f" docker service ps {name}_worker"
    )
    address = lab.addr(_webui_node(name, env), env)
    print(f"  web UI on a node's own address: http://{address}:{_ports(env)[0]}/")


def _webui_node(name: str, env: Mapping[str, str]) -> str:
    """The hostname of the node that runs the webui (node-0 when none does)."""
    client = engine.client(engine.host_of(env))
    tasks = client.services.get(f"{name}_webui").tasks(
        filters={"desired-state": "running"}
    )
    if not tasks:
        return "node-0"
    return str(client.nodes.get(tasks[0]["NodeID"]).attrs["Description"]["Hostname"])


def up(name: str, nodes: int, admin: str, timeout: float) -> None:
    """Deploy (or update in place) stack `name`, wait until it converged,
    make the admin user, say where everything is.

    Raises StackError when a step fails or the stack does not converge.
    """
    started = time.monotonic()
    env = dict(os.environ)
    if nodes > 1:
        env["LAB_ID"] = env.get("LAB_ID") or "dc"
        lab_up(nodes, env)
    where = f" on {env['DOCKER_HOST']}" if env.get("DOCKER_HOST") else ""
    log(f"deploying stack {name}{where}")
    stack.deploy(name, env)
    stack.restart_rebuilt(name, lab.engine_hosts(env), env)
    stack.wait(name, env, timeout=timeout)
    webui = require(name, "webui", env)
    # The webui migrates when it starts; once more is a no-op that makes sure.
    webui.exec("python", "manage.py", "migrate_locked", timeout=300)
    print()
    create_admin(webui, admin)
    if nodes > 1:
        print_lab(name, nodes, env)
    webui_port, rng_port, hasher_port, prometheus_port = _ports(env)
    print(
        f"""
DockerCoins is running as stack '{name}' (ready in {time.monotonic() - started:.0f}s):
  web UI      http://localhost:{webui_port}/
  admin       http://localhost:{webui_port}/admin/
  rng         http://localhost:{rng_port}/
  hasher      http://localhost:{hasher_port}/
  prometheus  http://localhost:{prometheus_port}/  (every role's /metrics)
  services    docker stack services {name}
  rollouts    make rollout ARGS='status'
  stop        make down"""
    )


def down(name: str, *, volumes: bool) -> None:
    """Remove the stack and wait until it is gone (its database volume stays
    unless `volumes`); when a lab is up or left over, the lab goes whole.

    Raises StackError naming what is left behind.
    """
    env = dict(os.environ)
    env["LAB_ID"] = env.get("LAB_ID") or "dc"
    if _lab_leftovers(env):
        if lab.active(env):
            node0 = {**env, "DOCKER_HOST": lab.hosts(env)[0]}
            try:
                stack.remove(name, node0, volumes=True)
            except StackError as exc:
                log(str(exc))
        lab.lab_sh("down", env=env, timeout=300)
        log(f"lab {env['LAB_ID']} removed")
        left = _lab_leftovers(env)
        if left:
            raise StackError(f"lab {env['LAB_ID']}: left behind: {left}")
        return
    if not engine.answers(engine.host_of(env)):
        log("no Docker engine answers: nothing to remove")
        return
    stack.remove(name, env, volumes=volumes)


def _lab_leftovers(env: Mapping[str, str]) -> str:
    try:
        return lab.lab_sh("leftovers", env=env).strip()
    except StackError:  # not root, no `ip`: no lab of ours either
        return ""
