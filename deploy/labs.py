"""A real multi-node swarm on this machine for tests and the bench: the lab
`make up NODES=N` forms (deploy/lab.sh and deploy/swarmops/lab.py), under an
id and a /24 of its own so that it never meets a user's lab.

    with running_lab(3) as lab:
        lab.docker("node", "ls")
        with lab.stack() as stack: ...
"""

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed, new_stack
from deploy.swarmops import controller
from deploy.swarmops import lab as swarm_lab
from deploy.swarmops.procs import StackError, run

UP_TIMEOUT = 600


def namespaces_unavailable() -> str:
    """Why a lab cannot be made here ("" when it can)."""
    try:
        swarm_lab.lab_sh("check", timeout=30)
    except StackError as exc:
        return str(exc).splitlines()[-1].removeprefix("ERROR: ")
    return ""


@dataclass
class Lab:
    nodes: int
    env: dict[str, str]

    def sh(self, *args: str, timeout: float = 120) -> str:
        """deploy/lab.sh's output; StackError when it fails."""
        return swarm_lab.lab_sh(*args, env=self.env, timeout=timeout)

    def host(self, node: int = 0) -> str:
        return self.sh("host", str(node)).strip()

    def addr(self, node: int | str) -> str:
        return swarm_lab.addr(node, self.env)

    def docker(self, *args: str, node: int = 0, timeout: float = 60) -> str:
        """The docker CLI's output on one node; StackError when it fails."""
        return run(["docker", "-H", self.host(node), *args], timeout=timeout)

    def node_states(self) -> dict[str, str]:
        """{hostname: "ready" | "down" | ...} as the swarm's managers see them."""
        listed = self.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}")
        return dict(line.lower().split(" ", 1) for line in listed.splitlines())

    @contextmanager
    def node_lost(self, node: str, *, back_within: float = 180) -> Iterator[float]:
        """Stop one node's engine (the node lost), yield the time.monotonic()
        it stopped, and always bring it back: start the engine again on its
        data root and wait until the swarm sees the node Ready, so the next
        test finds the lab whole (two of three managers down would leave the
        swarm without a quorum).

        Raises StackError when the engine does not start, AssertionError when
        the node is not Ready within `back_within` seconds.
        """
        self.sh("stop-node", node, timeout=90)
        try:
            yield time.monotonic()
        finally:
            self.sh("start-node", node, timeout=90)
            wait_until(
                lambda: self.node_states().get(node) == "ready",
                timeout=back_within,
                interval=1,
                message=f"{node} Ready again",
            )

    def leftovers(self) -> str:
        return self.sh("leftovers").strip()

    def down(self) -> None:
        self.sh("down", timeout=240)

    @contextmanager
    def stack(self, env: dict[str, str] | None = None) -> Iterator["LabStack"]:
        """A stack deployed on the lab (node-0 its manager), always removed."""
        ports = {"WEBUI_PORT": "8000", "RNG_PORT": "8001", "HASHER_PORT": "8002"}
        # The lab is where finding tasks on every node matters.
        metrics = {"PROMETHEUS_PORT": "9090", "PROMETHEUS_REPLICAS": "1"}
        base = new_stack({**ports, **metrics, **(env or {})})
        stack = LabStack(name=base.name, env={**base.env, **self.env}, lab=self)
        with deployed(stack):
            stack.wait(420)
            yield stack


@dataclass
class LabStack(Stack):
    """A stack on the lab: its roles are reached on their node's address."""

    lab: Lab = field(default=None, repr=False)  # type: ignore[assignment]

    def tasks(self, short: str) -> list[dict]:
        """[{"node", "state", "image", "desired", "id"}] of the service's tasks."""
        out = self.lab.docker(
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Node}}|{{.CurrentState}}|{{.Image}}|{{.DesiredState}}|{{.ID}}",
            self.service(short),
        )
        rows = []
        for line in out.splitlines():
            node, state, image, desired, task_id = line.split("|")
            rows.append(
                {
                    "node": node,
                    "state": state.split()[0].lower(),
                    "image": image.split("@")[0],
                    "desired": desired.lower(),
                    "id": task_id,
                }
            )
        return rows

    def nodes_by_address(self, short: str) -> dict[tuple[str, str], str]:
        """{(address on the stack's network, image tag): node} of every task
        of the service the engine still lists: where the task behind a
        Prometheus `instance` ran. The tag is in the key because a stopped
        task's address may be given to a new task."""
        ids = self.lab.docker(
            "service", "ps", "--quiet", "--no-trunc", self.service(short)
        ).split()
        hostnames = dict(
            line.split(" ", 1)
            for line in self.lab.docker(
                "node", "ls", "--format", "{{.ID}} {{.Hostname}}"
            ).splitlines()
        )
        listed = self.lab.docker(
            "inspect",
            "--type",
            "task",
            "--format",
            "{{.NodeID}}|{{.Spec.ContainerSpec.Image}}|"
            "{{range .NetworksAttachments}}{{range .Addresses}}{{.}} {{end}}{{end}}",
            *ids,
        )
        found = {}
        for line in listed.splitlines():
            node, image, addresses = line.split("|")
            tag = image.split("@")[0].rsplit(":", 1)[1]
            for address in addresses.split():
                found[(address.split("/")[0], tag)] = hostnames.get(node, node)
        return found

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

    def manage(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """`manage.py ARGS` in the stack's controller, on whichever node, as
        `make rollout` runs it (the image's user, the socket's group)."""
        task = controller.require(self.name, "controller", self.env)
        command = task.exec_args(
            "python", "manage.py", *args, user=task.as_controller(), stdin=False
        )
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@contextmanager
def running_lab(nodes: int, *, lab_id: str = "", net: str = "") -> Iterator[Lab]:
    """Form the lab, yield it, always tear it down (leftovers of a killed
    earlier run are removed first by `lab.sh up` itself). Its engines get
    every image a stack and the workshop need (deploy/swarmops/images.py).

    Id and /24 default to TEST_LAB_ID and TEST_LAB_NET, else `dt` and
    10.213.1: two runs on one machine need two of each.
    """
    env = {
        "LAB_ID": lab_id or os.environ.get("TEST_LAB_ID") or "dt",
        "LAB_NET": net or os.environ.get("TEST_LAB_NET") or "10.213.1",
    }
    # Formed from the host's engine (the images are there), used through node-0.
    lab = Lab(nodes=nodes, env={**env, "DOCKER_HOST": ""})
    try:
        lab.sh("up", str(nodes), timeout=UP_TIMEOUT)
        lab.env = {**env, "DOCKER_HOST": lab.host(0)}
        yield lab
    finally:
        lab.env = {**env, "DOCKER_HOST": ""}
        lab.down()
