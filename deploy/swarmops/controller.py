"""A stack's running containers, on whichever node runs them: the controller
for `make rollout`, the webui for `make up`'s admin user."""

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deploy.swarmops import engine
from deploy.swarmops.lab import engine_hosts
from deploy.swarmops.layout import IMAGE_UID, SERVICE_LABEL, service_name
from deploy.swarmops.procs import StackError, run


@dataclass(frozen=True)
class RunningTask:
    """One running container of a swarm service, and the engine it is on."""

    host: str
    container: str

    def exec_args(
        self, *args: str, user: str = "", tty: bool = False, stdin: bool = True
    ) -> list[str]:
        """The `docker exec` command line that runs `args` in it (with our
        stdin unless not `stdin`, a terminal when `tty`)."""
        flags = [*(["-i"] if stdin else []), *(["-t"] if tty else [])]
        flags += ["-u", user] if user else []
        return ["docker", "-H", self.host, "exec", *flags, self.container, *args]

    def exec(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        """`args`' output; StackError when the command fails in the container."""
        return run(self.exec_args(*args), stdin=stdin, timeout=timeout)

    def as_controller(self) -> str:
        """The image's user with the docker socket's group, like the controller
        itself: a root process would leave root-owned files the webui cannot
        write."""
        group = self.exec("stat", "-c", "%g", "/var/run/docker.sock").strip()
        return f"{IMAGE_UID}:{group}"


def find(
    stack: str, short: str, env: Mapping[str, str] | None = None
) -> RunningTask | None:
    """A running container of `<stack>_<short>` on any engine of the stack
    (the lab's nodes when LAB_ID names a lab that is up), or None."""
    label = f"{SERVICE_LABEL}={service_name(stack, short)}"
    for host in engine_hosts(env):
        try:
            running = engine.client(host).containers.list(filters={"label": label})
        except Exception:  # a lost node's engine: look on the others
            continue
        if running:
            return RunningTask(host=host, container=running[0].id)
    return None


def require(
    stack: str, short: str, env: Mapping[str, str] | None = None
) -> RunningTask:
    """Like find(); StackError naming the service when none runs."""
    task = find(stack, short, env)
    if task is None:
        raise StackError(f"no running {short} in stack {stack} (make up)")
    return task


def rollout_args(
    stack: str, args: Sequence[str], env: Mapping[str, str] | None = None
) -> list[str]:
    """`docker exec` of `manage.py rollout ARGS` in the stack's controller,
    as the controller's user. StackError when no controller runs."""
    task = require(stack, "controller", env)
    return task.exec_args(
        "python",
        "manage.py",
        "rollout",
        *args,
        user=task.as_controller(),
        tty=sys.stdin.isatty(),
    )


def exec_rollout(stack: str, args: Sequence[str], env: Mapping[str, str]) -> None:
    """`make rollout`: become `docker exec ... manage.py rollout ARGS`, so
    that its terminal, output and exit status are the user's."""
    command = rollout_args(stack, args, env)
    os.execvp(command[0], command)
