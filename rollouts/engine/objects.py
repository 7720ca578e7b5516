"""The engine's JSON, parsed once: services, tasks, nodes and update status as
small frozen objects.

The Engine API answers nested dicts whose keys may be missing (the engine
omits zero values) and whose times carry nanoseconds. `SwarmClient` turns each
answer into these objects at its edge, so the rest of the app reads
`service.mode` or `task.err`, never `svc["Spec"]["Mode"]`. The spec itself stays
a dict (`SwarmService.spec`): it is what we write back to the engine, and what
the translation module (rollouts.spec.specs) edits.

A spec is also stored (Service.live_spec, applied_spec) "as meant"
(rollouts.spec.specs.meant_spec): network attachments by network name, secrets
and configs without the ids the engine assigns when it creates them, so that a
re-deploy, which gives every network and secret a new id, is not drift. Such a
stored spec is only ever compared, never written to the engine.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollouts.records.describe import ACTIVE_DESIRED
from rollouts.spec.specs import (
    meant_spec,
    parse_engine_time,
    short_image,
    spec_image,
    spec_mode,
    task_fingerprint,
)

# Node states (Status.State) of a node that answers no more.
DOWN_STATES = ("down", "unknown", "disconnected")
REPLICATED, GLOBAL = "replicated", "global"


# --- a service -----------------------------------------------------------------


@dataclass(frozen=True)
class UpdateStatus:
    """The engine's word on the service's last rolling update (or rollback)."""

    state: str  # updating, paused, completed, rollback_started, ...
    message: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_engine(cls, raw: dict[str, Any] | None) -> "UpdateStatus | None":
        if not raw:
            return None
        return cls(
            state=raw.get("State") or "",
            message=raw.get("Message") or "",
            started_at=parse_engine_time(raw.get("StartedAt")),
            completed_at=parse_engine_time(raw.get("CompletedAt")),
        )


@dataclass(frozen=True)
class SwarmService:
    """One service as `GET /services?status=true` answers it."""

    id: str
    version: int
    name: str
    spec: dict[str, Any] = field(repr=False)  # the engine's, to write back
    previous_spec: dict[str, Any] | None = field(default=None, repr=False)
    mode: str = REPLICATED
    replicas: int | None = 1  # None for a global service
    image: str = ""  # as in the spec, `@sha256:` pin included
    updated_at: datetime | None = None
    update: UpdateStatus | None = None
    running_tasks: int = 0
    desired_tasks: int | None = None  # None: the engine did not count
    # {network id: name} as the engine named them when this was read.
    network_names: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_engine(
        cls, raw: dict[str, Any], network_names: dict[str, str] | None = None
    ) -> "SwarmService":
        spec = raw["Spec"]
        mode, replicas = spec_mode(spec)
        status = raw.get("ServiceStatus") or {}
        desired = status.get("DesiredTasks")
        return cls(
            id=raw["ID"],
            version=int((raw.get("Version") or {}).get("Index", 0)),
            name=spec["Name"],
            spec=spec,
            previous_spec=raw.get("PreviousSpec"),
            mode=mode,
            replicas=replicas,
            image=spec_image(spec),
            updated_at=parse_engine_time(raw.get("UpdatedAt")),
            update=UpdateStatus.from_engine(raw.get("UpdateStatus")),
            running_tasks=int(status.get("RunningTasks") or 0),
            desired_tasks=None if desired is None else int(desired),
            network_names=dict(network_names or {}),
        )

    @property
    def short_image(self) -> str:
        return short_image(self.image)

    @property
    def is_global(self) -> bool:
        return self.mode == GLOBAL

    @property
    def template(self) -> dict[str, Any]:
        template: dict[str, Any] = self.spec["TaskTemplate"]
        return template

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """task_fingerprint of the template: a task whose own equals it runs
        the current spec."""
        return task_fingerprint(self.template)

    @property
    def constraints(self) -> list[str]:
        placement = self.template.get("Placement") or {}
        return list(placement.get("Constraints") or [])

    @property
    def update_state(self) -> str:
        return self.update.state if self.update else ""

    @property
    def meant_spec(self) -> dict[str, Any]:
        """The spec in the operator's terms, to store and compare (module doc)."""
        return meant_spec(self.spec, self.network_names)

    @property
    def meant_previous_spec(self) -> dict[str, Any] | None:
        if not self.previous_spec:
            return None
        return meant_spec(self.previous_spec, self.network_names)


# --- a task --------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One task as `GET /tasks` answers it; `err` is the engine's reason a task
    is not running ("no suitable node (max replicas per node limit exceed)")."""

    id: str
    service_id: str
    slot: int | None  # None for a global service's task
    node_id: str  # "" while the scheduler has not placed it
    desired_state: str
    state: str
    err: str = ""
    message: str = ""
    exit_code: int | None = None
    timestamp: datetime | None = None  # when it entered `state` (engine time)
    created_at: datetime | None = None
    image: str = ""
    fingerprint: tuple[Any, ...] = ()
    container_id: str = ""

    @classmethod
    def from_engine(cls, raw: dict[str, Any]) -> "Task":
        status = raw.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        spec = raw.get("Spec") or {}
        exit_code = container.get("ExitCode")
        return cls(
            id=raw["ID"],
            service_id=raw.get("ServiceID") or "",
            slot=raw.get("Slot") or None,
            node_id=raw.get("NodeID") or "",
            desired_state=raw.get("DesiredState") or "",
            state=status.get("State") or "",
            err=status.get("Err") or "",
            message=status.get("Message") or "",
            exit_code=None if exit_code is None else int(exit_code),
            timestamp=parse_engine_time(status.get("Timestamp")),
            created_at=parse_engine_time(raw.get("CreatedAt")),
            image=str((spec.get("ContainerSpec") or {}).get("Image") or ""),
            fingerprint=task_fingerprint(spec),
            container_id=container.get("ContainerID") or "",
        )

    @property
    def short_image(self) -> str:
        return short_image(self.image)

    @property
    def should_run(self) -> bool:
        """The orchestrator wants it running (not told to shut down)."""
        return self.desired_state in ACTIVE_DESIRED

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def running_since(self) -> datetime | None:
        """When the task started running, for the stability window; None unless
        it runs now. The engine's own time, not when we first saw it running:
        Status.Timestamp, which the node's agent sets when it reports the state
        change (the container has started by then), and which a running task
        keeps until it leaves that state. Never before CreatedAt (set by the
        manager): a task cannot run before the orchestrator created it, so an
        agent whose clock runs behind the manager's cannot date its start
        earlier than that (rollouts.control.outcome has the whole rule)."""
        if not self.running or self.timestamp is None:
            return None
        if self.created_at is not None and self.timestamp < self.created_at:
            return self.created_at
        return self.timestamp

    @property
    def unplaced(self) -> bool:
        """Pending for want of a node: the scheduler said why in `err`."""
        return self.should_run and self.state == "pending" and bool(self.err)

    @property
    def created_key(self) -> str:
        """Sorts tasks oldest first (a task the engine did not date first)."""
        return self.created_at.isoformat() if self.created_at else ""


def tasks_from_engine(raw: list[dict[str, Any]]) -> list[Task]:
    return [Task.from_engine(t) for t in raw]


# --- a node --------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    address: str
    role: str
    state: str
    availability: str
    leader: bool = False

    @classmethod
    def from_engine(cls, raw: dict[str, Any]) -> "Node":
        status = raw.get("Status") or {}
        spec = raw.get("Spec") or {}
        manager = raw.get("ManagerStatus") or {}
        return cls(
            id=raw["ID"],
            hostname=(raw.get("Description") or {}).get("Hostname", raw["ID"][:12]),
            address=status.get("Addr", ""),
            role=spec.get("Role", ""),
            state=status.get("State", ""),
            availability=spec.get("Availability", ""),
            leader=bool(manager.get("Leader")),
        )

    @property
    def down(self) -> bool:
        return self.state in DOWN_STATES

    def describe(self) -> str:
        """ "node-2 (10.213.0.12, manager)"."""
        return f"{self.hostname} ({self.address}, {self.role})"


def nodes_from_engine(raw: list[dict[str, Any]]) -> list[Node]:
    """Engine API node dicts -> Nodes, sorted by hostname."""
    return sorted((Node.from_engine(n) for n in raw), key=lambda n: n.hostname)


# --- an image ------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """A tagged image on the engine: the tag, the image it names now (its id,
    `sha256:...`), and its registry digest when it came from a registry."""

    reference: str  # repo:tag
    image_id: str
    digest: str = ""  # repo:tag@sha256:..., "" for a local build

    @classmethod
    def from_engine(cls, raw: dict[str, Any], reference: str) -> "Image":
        return cls(
            reference=reference,
            image_id=raw["Id"],
            digest=_digest_for(reference, raw.get("RepoDigests")),
        )


def _digest_for(reference: str, repo_digests: list[str] | None) -> str:
    """`repo:tag@sha256:...` when the image came from a registry, else ""."""
    repo = reference.rsplit(":", 1)[0] if ":" in reference.split("/")[-1] else reference
    for entry in repo_digests or ():
        entry_repo, _, digest = entry.partition("@")
        if entry_repo == repo and digest:
            return f"{reference}@{digest}"
    return ""
