"""Last applied, live, desired: three specs, and the differences between them.

What we last wrote (Service.applied_spec, the engine's Spec as read right after
our write), what runs (Service.live_spec) and what the operator now asks (the
desired fields) are different things, as `kubectl apply` keeps its
last-applied configuration and Argo CD shows out-of-sync. A difference between
what runs and what we last applied is drift: someone else wrote the service
(`docker service update`, `docker stack deploy`). The engine says when
(UpdatedAt), not who.

Compared is everything in a spec that decides where and how tasks run, not
only the fields our desired spec sets. Pure functions over Engine API specs.
"""

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from rollouts.spec.fields import SWARM_FIELDS, human_duration
from rollouts.spec.specs import desired_from_spec, policy_from_config, short_image

if TYPE_CHECKING:  # the type only: spec/ never imports the models at run time
    from rollouts.models import Service


def _get(*path: str) -> Callable[[dict[str, Any]], object]:
    def get(spec: dict[str, Any]) -> object:
        value: object = spec
        for key in path:
            value = (value or {}).get(key) if isinstance(value, dict) else None
        return value

    return get


def _mode(spec: dict[str, Any]) -> object:
    mode = spec.get("Mode") or {}
    return "global" if "Global" in mode else "replicated"


def _replicas(spec: dict[str, Any]) -> object:
    mode = spec.get("Mode") or {}
    if "Global" in mode:
        return None
    return (mode.get("Replicated") or {}).get("Replicas", 1)


def _image(spec: dict[str, Any]) -> object:
    return short_image(spec["TaskTemplate"]["ContainerSpec"]["Image"])


def _policy(key: str) -> Callable[[dict[str, Any]], object]:
    return lambda spec: policy_from_config(spec.get(key))


def _sorted(
    getter: Callable[[dict[str, Any]], object],
) -> Callable[[dict[str, Any]], object]:
    return lambda spec: sorted(cast(list[str], getter(spec) or []))


# (label, how to read it from a Spec): what decides where and how tasks run.
DECISIVE: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("image", _image),
    ("mode", _mode),
    ("replicas", _replicas),
    ("command", _get("TaskTemplate", "ContainerSpec", "Command")),
    ("args", _get("TaskTemplate", "ContainerSpec", "Args")),
    ("env", _sorted(_get("TaskTemplate", "ContainerSpec", "Env"))),
    ("mounts", _get("TaskTemplate", "ContainerSpec", "Mounts")),
    ("health check", _get("TaskTemplate", "ContainerSpec", "Healthcheck")),
    ("user", _get("TaskTemplate", "ContainerSpec", "User")),
    ("secrets", _get("TaskTemplate", "ContainerSpec", "Secrets")),
    (
        "placement constraints",
        _sorted(_get("TaskTemplate", "Placement", "Constraints")),
    ),
    ("placement preferences", _get("TaskTemplate", "Placement", "Preferences")),
    ("max replicas per node", _get("TaskTemplate", "Placement", "MaxReplicas")),
    ("resources", _get("TaskTemplate", "Resources")),
    ("restart policy", _get("TaskTemplate", "RestartPolicy")),
    ("networks", _get("TaskTemplate", "Networks")),
    ("force update", _get("TaskTemplate", "ForceUpdate")),
    ("update policy", _policy("UpdateConfig")),
    ("rollback policy", _policy("RollbackConfig")),
    ("endpoint", _get("EndpointSpec")),
]


def _show(value: object) -> str:
    if value in (None, [], {}, ""):
        return "-"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _policy_value(key: str, value: object) -> str:
    if key in ("delay", "monitor") and isinstance(value, float | int):
        return human_duration(value)
    return _show(value)


def _policy_rows(
    label: str, old: dict[str, Any], new: dict[str, Any]
) -> list[tuple[str, str, str]]:
    prefix = label.split()[0]
    return [
        (
            f"{prefix} {key.replace('_', ' ')}",
            _policy_value(key, old[key]),
            _policy_value(key, new[key]),
        )
        for key in old
        if old[key] != new[key]
    ]


def spec_differences(
    ours: dict[str, Any], theirs: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """[(label, ours, theirs)] for every decisive part of two engine Specs that
    differs; values are short text ("-" for none), policies field by field."""
    rows: list[tuple[str, str, str]] = []
    for label, read in DECISIVE:
        old, new = read(ours), read(theirs)
        if old == new:
            continue
        if label.endswith("policy"):
            rows += _policy_rows(label, old, new)  # type: ignore[arg-type]
        else:
            rows.append((label, _show(old), _show(new)))
    return rows


def drift(
    applied: dict[str, Any], live: dict[str, Any], *, updated_at: datetime | None = None
) -> dict[str, Any] | None:
    """None when what runs is what we last applied (or we have no record);
    else {"differences": [(label, applied, live)], "updated_at": engine time of
    the last write to the service, when the engine tells}."""
    if not applied or not live:
        return None
    rows = spec_differences(applied, live)
    if not rows:
        return None
    return {"differences": rows, "updated_at": updated_at}


def describe_drift(found: dict[str, Any] | None) -> str:
    """One line: `replicas 4 -> 10; update monitor 5s -> 1ms (changed outside at
    ...)`; "" when there is no drift."""
    if not found:
        return ""
    text = "; ".join(
        f"{label} {old} -> {new}" for label, old, new in found["differences"]
    )
    when = found.get("updated_at")
    if when:
        text += f" (written outside at {when:%Y-%m-%d %H:%M:%S} UTC)"
    return text


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b)  # type: ignore[arg-type]
    return a == b


def follow_live(
    desired_now: dict[str, Any],
    live_spec: dict[str, Any],
    asked: dict[str, Any],
    carry: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The desired fields to save for a change: what the operator changed, and
    for every other swarm field what runs now (never our older desired value,
    which would silently revert an outside change).

    `asked` maps fields to values; `carry` names the ones the operator chose
    (command-line flags); without it, the changed ones are those that differ
    from `desired_now` (a form posts every field). Fields the swarm does not
    hold (deadline, stability window) are always taken from `asked`.
    """
    if not live_spec:
        return dict(asked)
    live = desired_from_spec(live_spec)
    if carry is None:
        changed = {f for f, v in asked.items() if not _same(v, desired_now.get(f))}
    else:
        changed = set(carry) & set(asked)
    result = {f: v for f, v in asked.items() if f not in SWARM_FIELDS}
    result.update({f: live[f] for f in SWARM_FIELDS if f not in changed})
    result.update({f: asked[f] for f in changed})
    if "replicas" in changed:
        pass  # the operator's own, validated as such
    elif result["mode"] == "global":
        result["replicas"] = None
    elif result.get("replicas") is None:
        result["replicas"] = desired_now.get("replicas") or 1
    return result


def service_drift(service: "Service") -> dict[str, Any] | None:
    """drift() of a Service row (rollouts.models.Service): its applied_spec vs
    its live_spec, with the engine's UpdatedAt. None when in sync, missing, or
    while a rollout of ours is writing (then the live spec is ours in flight)."""
    if service.missing:
        return None
    return drift(
        service.applied_spec, service.live_spec, updated_at=service.live_updated_at
    )
