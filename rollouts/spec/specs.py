"""Pure translations between our desired fields and the engine's service spec.

No engine here: these functions take and return the plain dicts the Engine API
speaks (durations in nanoseconds; the policies as docker-py's typed
UpdateConfig/RollbackConfig, which are dicts too), so they are tested without an
engine. Which fields exist, and their units, comes from `rollouts.spec.fields`.
The few readings of an engine spec every part shares (its mode, its image, a
task's fingerprint, a spec "as meant") are here, once; the engine's answers
themselves are parsed into typed objects by rollouts.engine.objects.
"""

import copy
import math
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils.dateparse import parse_datetime
from docker.types import RollbackConfig, UpdateConfig

from rollouts.spec.fields import (
    BY_NAME,
    CANARY_HOLD,
    COUNT,
    DURATION,
    ENGINE_POLICY_DEFAULTS,
    RATIO,
    SWARM_FIELDS,
    human_duration,
    policy_fields,
)

if TYPE_CHECKING:  # the type only: spec/ never imports the engine at run time
    from rollouts.engine.objects import Task

NS = 1_000_000_000
_CONFIGS = {"update": UpdateConfig, "rollback": RollbackConfig}


def to_ns(seconds: float) -> int:
    return int(round(seconds * NS))


def from_ns(value: int | None) -> float:
    return (value or 0) / NS


def policy_config(desired: dict[str, Any], prefix: str) -> UpdateConfig:
    """The UpdateConfig (prefix "update") or RollbackConfig, every field set
    (durations in nanoseconds), as docker-py's typed config."""
    arguments: dict[str, Any] = {}
    for field in policy_fields(prefix):
        value = desired[field.name]
        if field.kind == DURATION:
            value = to_ns(value)
        elif field.policy == "max_failure_ratio":
            value = float(value)
        arguments[field.policy] = value
    return _CONFIGS[prefix](**arguments)


def policy_from_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Our policy fields from an engine config, with the engine's meaning of gaps.

    A missing config means the engine defaults. Inside a config the engine omits
    zero values, and a zero Monitor means its default of 5 s.
    """
    if config is None:
        return dict(ENGINE_POLICY_DEFAULTS)
    policy: dict[str, Any] = {}
    for field in policy_fields("update"):  # the same keys as "rollback"
        raw = config.get(field.engine_key)
        if field.kind == DURATION:
            policy[field.policy] = from_ns(raw)
        elif field.kind == COUNT:
            policy[field.policy] = int(raw or 0)
        elif field.kind == RATIO:
            policy[field.policy] = round(float(raw or 0), 6)
        else:
            policy[field.policy] = raw or ENGINE_POLICY_DEFAULTS[field.policy]
    policy["monitor"] = policy["monitor"] or ENGINE_POLICY_DEFAULTS["monitor"]
    return policy


_REFERENCE = re.compile(
    r"^(?P<repo>(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+:[a-fA-F0-9]{32,}))?$"
)


def parse_image(reference: str) -> tuple[str, str, str] | None:
    """(repository, tag, digest) of an image reference; None when it is invalid.

    The tag defaults to "latest" as in Docker; the digest is "" when unpinned.
    """
    match = _REFERENCE.match(reference or "")
    if not match:
        return None
    return match["repo"], match["tag"] or "latest", match["digest"] or ""


def spec_mode(spec: dict[str, Any]) -> tuple[str, int | None]:
    """("global", None) or ("replicated", replicas) of an engine Spec: the one
    place the mode is read (a replicated Spec without a count means 1)."""
    mode = spec.get("Mode") or {}
    if "Global" in mode:
        return "global", None
    return "replicated", int((mode.get("Replicated") or {}).get("Replicas", 1))


def spec_image(spec: dict[str, Any]) -> str:
    """The image reference of an engine Spec, as written (pin included)."""
    template = spec.get("TaskTemplate") or {}
    return str((template.get("ContainerSpec") or {}).get("Image") or "")


def meant_spec(spec: dict[str, Any], network_names: dict[str, str]) -> dict[str, Any]:
    """A copy of an engine Spec in the operator's terms, to store and compare:
    network targets become network names (an id it cannot name is kept),
    secrets and configs keep their names and files but lose the ids the engine
    assigns when a deploy creates them. Never written back to the engine."""
    meant = copy.deepcopy(spec)
    template = meant.get("TaskTemplate") or {}
    for network in template.get("Networks") or []:
        target = network.get("Target", "")
        network["Target"] = network_names.get(target, target)
    container = template.get("ContainerSpec") or {}
    for secret in container.get("Secrets") or []:
        secret.pop("SecretID", None)
    for config in container.get("Configs") or []:
        config.pop("ConfigID", None)
    return meant


def desired_from_spec(spec: dict) -> dict:
    """The swarm half of our desired fields, as the engine has them now."""
    image = spec_image(spec)
    repo, tag, _ = parse_image(image) or (image, "latest", "")
    mode, replicas = spec_mode(spec)
    desired = {"image": repo, "tag": tag, "mode": mode, "replicas": replicas}
    for prefix, key in (("update", "UpdateConfig"), ("rollback", "RollbackConfig")):
        for field, value in policy_from_config(spec.get(key)).items():
            desired[f"{prefix}_{field}"] = value
    return desired


# --- the canary's hold --------------------------------------------------------
# The two policy fields the hold sets (rollouts.control.canary.held).
HOLD_FIELDS = ("update_parallelism", "update_delay")


def is_held(spec: dict[str, Any] | None) -> bool:
    """Whether an engine Spec carries the canary's hold (an update delay of
    CANARY_HOLD, which no declared policy can have)."""
    delay = ((spec or {}).get("UpdateConfig") or {}).get("Delay")
    return delay == to_ns(CANARY_HOLD)


def unheld(live: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """`live` (desired fields read from a spec, desired_from_spec) with the
    hold's fields taken from `declared` when `live` carries the hold: the hold
    is our means of a canary, never a policy anyone chose, so it is never
    adopted or carried into the next change."""
    if live.get("update_delay") != CANARY_HOLD:
        return live
    return {**live, **{f: declared[f] for f in HOLD_FIELDS if f in declared}}


def with_policy_of(spec: dict[str, Any], policy_from: dict[str, Any]) -> dict[str, Any]:
    """A copy of engine Spec `spec` with the UpdateConfig of `policy_from`."""
    new = copy.deepcopy(spec)
    if "UpdateConfig" in policy_from:
        new["UpdateConfig"] = copy.deepcopy(policy_from["UpdateConfig"])
    else:
        new.pop("UpdateConfig", None)
    return new


def apply_desired(spec: dict, desired: dict, image: str) -> dict:
    """A copy of `spec` with our fields set; everything else is kept as it was."""
    new = copy.deepcopy(spec)
    new["TaskTemplate"]["ContainerSpec"]["Image"] = image
    if desired["mode"] == "global":
        new["Mode"] = {"Global": {}}
    else:
        new["Mode"] = {"Replicated": {"Replicas": int(desired["replicas"])}}
    new["UpdateConfig"] = policy_config(desired, "update")
    new["RollbackConfig"] = policy_config(desired, "rollback")
    return new


# --- tasks -------------------------------------------------------------------


def task_fingerprint(task_spec: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies the spec a task runs; the engine's task copy of the
    template omits some defaults, so compare only what an update changes.

    Placement is left out, as the engine leaves it out: a task whose node still
    satisfies new constraints is not dirty and is never replaced (swarmkit's
    IsTaskDirtyPlacementConstraintsOnly); one that does not is shut down.
    """
    container = task_spec.get("ContainerSpec") or {}
    return (
        container.get("Image"),
        tuple(container.get("Command") or ()),
        tuple(container.get("Args") or ()),
        tuple(sorted(container.get("Env") or ())),
        task_spec.get("ForceUpdate", 0),
    )


def parse_engine_time(value: str | None) -> datetime | None:
    """Engine timestamps carry nanoseconds; Python keeps microseconds. None
    for a missing or zero time ("0001-01-01T00:00:00Z": never)."""
    if not value or value.startswith("0001-01-01"):
        return None
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    return parse_datetime(value.replace("Z", "+00:00"))


def short_image(image: str) -> str:
    """`repo:tag` without the `@sha256:...` pin the engine may add."""
    return image.split("@", 1)[0]


# A swarm task id: 25 lower-case letters and digits (swarmkit's identity.NewID).
_TASK_ID = re.compile(r"\b[a-z0-9]{25}\b")


def task_name(service_name: str, task: "Task", nodes: dict[str, str]) -> str:
    """`dockercoins_worker.3`, or `dockercoins_rng.<node>` for a global service."""
    where = task.slot or nodes.get(task.node_id, "?")
    return f"{service_name}.{where}"


def name_task_ids(text: str, names: dict[str, str], service_name: str = "") -> str:
    """The engine's messages name tasks by id; operators know slots. `names`:
    task id -> its label (`dockercoins_worker.2 (k3j4…)`); with `service_name`,
    an id no longer listed becomes `<service>.? (<id[:12]>)` (slot unknown)."""
    for task_id, name in names.items():
        if task_id in text:
            text = text.replace(task_id, name)
    if service_name:
        text = _TASK_ID.sub(lambda m: f"{service_name}.? ({m.group(0)[:12]})", text)
    return text


def task_row(task: "Task", nodes: dict[str, str]) -> dict[str, Any]:
    """One row of a service's stored task table (Service.live_tasks: JSON)."""
    return {
        "id": task.id,
        "image": task.short_image,
        "node": nodes.get(task.node_id, task.node_id),
        "desired_state": task.desired_state,
        "state": task.state,
        "error": task.err,
        "message": task.message,
        "exit_code": task.exit_code,
        "since": task.timestamp.isoformat() if task.timestamp else "",
        "created": task.created_key,
    }


def group_tasks(tasks: list["Task"], nodes: dict[str, str]) -> list[dict[str, Any]]:
    """`docker service ps`, grouped: one entry per slot (per node for a global
    service), its tasks newest first; the older ones are the `\\_` rows."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        key = str(task.slot) if task.slot else nodes.get(task.node_id, "")
        groups.setdefault(key, []).append(task_row(task, nodes))
    ordered = sorted(groups.items(), key=lambda item: _slot_key(item[0]))
    return [
        {"slot": slot, "tasks": sorted(rows, key=lambda r: r["created"], reverse=True)}
        for slot, rows in ordered
    ]


def _slot_key(slot: str) -> tuple:
    numbered = slot.isascii() and slot.isdigit()
    return (0, int(slot), "") if numbered else (1, 0, slot)


# --- plan --------------------------------------------------------------------


def spec_diff(
    live: dict[str, Any], desired: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """[(label, live, desired)] for every swarm field that differs, in human
    units; the image and its tag make one row, "image"."""
    rows = []
    old_image, new_image = (f"{d['image']}:{d['tag']}" for d in (live, desired))
    if old_image != new_image:
        rows.append(("image", old_image, new_image))
    for name in SWARM_FIELDS:
        if name in ("image", "tag"):
            continue
        field, old, new = BY_NAME[name], live.get(name), desired.get(name)
        if isinstance(old, float) or isinstance(new, float):
            same = old is not None and new is not None and math.isclose(old, new)
        else:
            same = old == new
        if not same:
            rows.append((field.label, field.human(old), field.human(new)))
    return rows


def expected_duration(
    live: dict, desired: dict, tasks: int, *, rebuilt: bool = False
) -> str:
    """A rough estimate of how long applying `desired` over `live` takes; `tasks`
    is how many tasks a global service runs (ignored when replicated).
    `rebuilt`: the tag names another build than the tasks run, so the apply
    forces an update (rollouts.control.identity) and every task is rolled out
    like a new image, with the update policy."""
    if live["mode"] != desired["mode"]:
        return "re-creation: the service is removed, then created again (brief outage)"
    same_image = (live["image"], live["tag"]) == (desired["image"], desired["tag"])
    if same_image and not rebuilt:
        return "a few seconds (no rolling update: tasks are only added or removed)"
    if desired["mode"] == "replicated":
        tasks = desired["replicas"]
    if not tasks:
        return "a few seconds (no task runs this spec)"
    parallelism = desired["update_parallelism"] or tasks
    batches = math.ceil(tasks / parallelism)
    delay, monitor = desired["update_delay"], desired["update_monitor"]
    total = (batches - 1) * delay + monitor + batches * 2
    every = (
        f"a rolling update of every task (the tag was rebuilt), {batches} batch(es)"
        if rebuilt and same_image
        else f"{batches} batch(es)"
    )
    return (
        f"about {human_duration(total)}: {every} of up to {parallelism} "
        f"task(s), {human_duration(delay)} apart, {human_duration(monitor)} monitor "
        f"after the last, ~2s start-up per batch"
    )
