"""A real multi-node swarm on this machine for tests and the bench: the lab of
deploy/lab.sh (the code `make up NODES=N` uses), under an id and a /24 of its
own so that it never meets a user's lab.

    with running_lab(3) as lab:
        lab.docker("node", "ls")
        with lab.stack() as stack: ...
"""

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from deploy.stacks import REPO, StackError, new_stack, stack_sh

LAB_SH = REPO / "deploy" / "lab.sh"
UP_TIMEOUT = 600
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def namespaces_unavailable() -> str:
    """Why a lab cannot be made here ("" when it can)."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "iptables", "nsenter", "unshare", "socat", "dockerd"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (deploy/bootstrap.sh installs it)"
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--uts", "true"], capture_output=True
    )
    if probe.returncode != 0:
        return f"network namespaces cannot be made: {probe.stderr.decode().strip()}"
    return ""


@dataclass
class Lab:
    nodes: int
    env: dict[str, str]

    def sh(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [str(LAB_SH), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise StackError(
                f"deploy/lab.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def host(self, node: int = 0) -> str:
        return self.sh("host", str(node)).strip()

    def addr(self, node: int | str) -> str:
        return self.sh("addr", str(node)).strip()

    def docker(self, *args: str, node: int = 0, timeout: float = 60) -> str:
        done = subprocess.run(
            ["docker", "-H", self.host(node), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise StackError(
                f"docker {' '.join(args)} on node-{node} failed:\n{done.stderr}"
            )
        return done.stdout

    def leftovers(self) -> str:
        return self.sh("leftovers").strip()

    def down(self) -> None:
        self.sh("down", timeout=240)

    @contextmanager
    def stack(self, env: dict[str, str] | None = None) -> Iterator["LabStack"]:
        """A stack deployed on the lab through deploy/stack.sh, always removed."""
        base = new_stack(
            {
                "WEBUI_PORT": "8000",
                "RNG_PORT": "8001",
                "HASHER_PORT": "8002",
                # The lab is where finding tasks on every node matters.
                "PROMETHEUS_PORT": "9090",
                "PROMETHEUS_REPLICAS": "1",
                **(env or {}),
            }
        )
        stack = LabStack(lab=self, name=base.name, env={**base.env, **self.env})
        with ExitStack() as cleanup:
            cleanup.callback(
                stack_sh, "rm", stack.name, "--volumes", env=stack.env, timeout=240
            )
            stack_sh("deploy", stack.name, env=stack.env, timeout=180)
            stack_sh("wait", stack.name, "420", env=stack.env, timeout=450)
            yield stack


@dataclass
class LabStack:
    lab: Lab
    name: str
    env: dict[str, str]

    def service(self, short: str) -> str:
        return f"{self.name}_{short}"

    def tasks(self, short: str) -> list[dict]:
        """[{"node", "state", "image", "desired"}] of the service's tasks."""
        out = self.lab.docker(
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Node}}|{{.CurrentState}}|{{.Image}}|{{.DesiredState}}",
            self.service(short),
        )
        rows = []
        for line in out.splitlines():
            node, state, image, desired = line.split("|")
            rows.append(
                {
                    "node": node,
                    "state": state.split()[0].lower(),
                    "image": image.split("@")[0],
                    "desired": desired.lower(),
                }
            )
        return rows

    def running_nodes(self, short: str) -> list[str]:
        return sorted(
            t["node"]
            for t in self.tasks(short)
            if t["desired"] == "running" and t["state"] == "running"
        )

    def node_of(self, short: str) -> str:
        nodes = self.running_nodes(short)
        if not nodes:
            raise StackError(f"no running task of {short}")
        return nodes[0]

    def url(self, short: str, path: str = "/") -> str:
        port = {"webui": 8000, "rng": 8001, "hasher": 8002, "prometheus": 9090}[short]
        return f"http://{self.lab.addr(self.node_of(short))}:{port}{path}"

    def json(self) -> dict:
        import json

        with _opener.open(self.url("webui", "/json"), timeout=10) as response:
            return json.load(response)

    def rate(self, window: float) -> float:
        """Hashes per second from the webui's /json over `window` seconds."""
        first = self.json()
        time.sleep(window)
        last = self.json()
        return (last["hashes"] - first["hashes"]) / (last["now"] - first["now"])

    def manage(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """`manage.py ARGS` in the stack's controller, on whichever node, as
        `make rollout` runs it (the image's user, the socket's group)."""
        node = int(self.node_of("controller").removeprefix("node-").split()[0])
        host = self.lab.host(node)
        container = subprocess.run(
            [
                "docker",
                "-H",
                host,
                "ps",
                "-q",
                "--filter",
                f"label=com.docker.swarm.service.name={self.service('controller')}",
                "--filter",
                "status=running",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split()[0]
        group = self.lab.docker(
            "exec", container, "stat", "-c", "%g", "/var/run/docker.sock", node=node
        ).strip()
        return subprocess.run(
            [
                "docker",
                "-H",
                host,
                "exec",
                "-u",
                f"10001:{group}",
                container,
                "python",
                "manage.py",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@contextmanager
def running_lab(
    nodes: int, *, lab_id: str = "dt", net: str = "10.213.1"
) -> Iterator[Lab]:
    """Form the lab, yield it, always tear it down (leftovers of a killed
    earlier run are removed first by `lab.sh up` itself)."""
    image = os.environ.get("DOCKERCOINS_IMAGE", "dockercoins")
    env = {
        "LAB_ID": lab_id,
        "LAB_NET": net,
        "LAB_IMAGES": " ".join(
            [
                f"{image}:1.0",
                f"{image}:1.1",
                os.environ.get("REDIS_IMAGE", "dockercoins-redis:1.0"),
                os.environ.get("POSTGRES_IMAGE", "dockercoins-postgres:1.0"),
                os.environ.get("PROMETHEUS_IMAGE", "dockercoins-prometheus:1.0"),
            ]
        ),
    }
    lab = Lab(nodes=nodes, env=env)
    lab_env = {**env, "DOCKER_HOST": ""}
    lab.env = lab_env
    try:
        lab.sh("up", str(nodes), timeout=UP_TIMEOUT)
        lab.env = {**env, "DOCKER_HOST": lab.host(0)}
        yield lab
    finally:
        lab.env = lab_env
        lab.down()
