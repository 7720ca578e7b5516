"""Last applied, live, desired: three specs, and the differences between them.

What we last wrote (Service.applied_spec, the engine's Spec as read right after
our write), what runs (Service.live_spec) and what the operator now asks (the
desired fields) are different things, as `kubectl apply` keeps its
last-applied configuration and Argo CD shows out-of-sync. A difference between
what runs and what we last applied is drift: someone else wrote the service
(`docker service update`, `docker stack deploy`). The engine says when
(UpdatedAt), not who.

Compared is everything in a spec that decides where and how tasks run, not
only the fields our desired spec sets, in the operator's terms: networks and
secrets by name (the specs are stored "as meant", rollouts.engine.objects), never
the ids the engine assigns when a re-deploy creates them again. Each difference
is one line in the words `rollout plan` uses ("update delay 5s -> 10s"). Pure
functions over Engine API specs.
"""

import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from rollouts.spec.fields import SWARM_FIELDS, human_duration
from rollouts.spec.specs import (
    desired_from_spec,
    policy_from_config,
    short_image,
    spec_image,
    spec_mode,
    unheld,
)

if TYPE_CHECKING:  # the type only: spec/ never imports the models at run time
    from rollouts.models import Service

# An id the engine assigned (25 lowercase letters and digits): a spec stored
# before specs were kept "as meant" still names its networks so.
_ENGINE_ID = re.compile(r"^[a-z0-9]{25}$")


def _get(*path: str) -> Callable[[dict[str, Any]], object]:
    def get(spec: dict[str, Any]) -> object:
        value: object = spec
        for key in path:
            value = (value or {}).get(key) if isinstance(value, dict) else None
        return value

    return get


def _mode(spec: dict[str, Any]) -> object:
    return spec_mode(spec)[0]


def _replicas(spec: dict[str, Any]) -> object:
    return spec_mode(spec)[1]


def _image(spec: dict[str, Any]) -> object:
    return short_image(spec_image(spec))


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    return cast(dict[str, Any], container)


def _networks(spec: dict[str, Any]) -> object:
    """[(name, aliases)]; the name is None for a network an old record names
    by an engine id only (then its aliases alone identify it)."""
    found = []
    for network in (spec.get("TaskTemplate") or {}).get("Networks") or []:
        target = network.get("Target") or ""
        name = None if _ENGINE_ID.match(target) else target
        found.append((name, tuple(sorted(network.get("Aliases") or ()))))
    return sorted(found, key=lambda n: (n[0] or "", n[1]))


def _references(key: str, name: str) -> Callable[[dict[str, Any]], object]:
    """Secrets or configs as "name (as file)", sorted; never their ids."""

    def read(spec: dict[str, Any]) -> object:
        return sorted(
            f"{item.get(name) or '?'} (as {(item.get('File') or {}).get('Name', '?')})"
            for item in _container(spec).get(key) or []
        )

    return read


def _mounts(spec: dict[str, Any]) -> object:
    return sorted(
        f"{m.get('Source') or '-'}:{m.get('Target')} ({m.get('Type', 'volume')}"
        + (", read-only)" if m.get("ReadOnly") else ")")
        for m in _container(spec).get("Mounts") or []
    )


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
    ("mounts", _mounts),
    ("health check", _get("TaskTemplate", "ContainerSpec", "Healthcheck")),
    ("user", _get("TaskTemplate", "ContainerSpec", "User")),
    ("secrets", _references("Secrets", "SecretName")),
    ("configs", _references("Configs", "ConfigName")),
    (
        "placement constraints",
        _sorted(_get("TaskTemplate", "Placement", "Constraints")),
    ),
    ("placement preferences", _get("TaskTemplate", "Placement", "Preferences")),
    ("max replicas per node", _get("TaskTemplate", "Placement", "MaxReplicas")),
    ("resources", _get("TaskTemplate", "Resources")),
    ("restart policy", _get("TaskTemplate", "RestartPolicy")),
    ("networks", _networks),
    ("force update", _get("TaskTemplate", "ForceUpdate")),
    ("update policy", _policy("UpdateConfig")),
    ("rollback policy", _policy("RollbackConfig")),
    ("endpoint", _get("EndpointSpec")),
]


def _show(value: object) -> str:
    """A value in words: "-" for none, lists joined, a dict as key=value."""
    if value in (None, [], {}, ""):
        return "-"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, dict):
        return ", ".join(f"{_words(k)} {_show(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return "; ".join(_show(v) for v in value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _words(key: str) -> str:
    """ "MemoryBytes" -> "memory bytes", as an operator reads a field."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).lower()


def _show_networks(value: object) -> str:
    parts = []
    for name, aliases in cast(list[tuple[str | None, tuple[str, ...]]], value):
        text = name or "a network"
        if aliases:
            text += f" (aliases {', '.join(aliases)})"
        parts.append(text)
    return ", ".join(parts) or "-"


def _same_networks(old: object, new: object) -> bool:
    """Equal by name and aliases; by aliases alone where an old record knows a
    network only by an id the engine has since replaced."""
    a = cast(list[tuple[str | None, tuple[str, ...]]], old)
    b = cast(list[tuple[str | None, tuple[str, ...]]], new)
    if a == b:
        return True
    if len(a) != len(b) or all(n for n, _ in a + b):
        return False
    return sorted(aliases for _, aliases in a) == sorted(aliases for _, aliases in b)


def _policy_value(key: str, value: object) -> str:
    if key in ("delay", "monitor") and isinstance(value, float | int):
        return human_duration(value)
    return _show(value)


def _policy_rows(
    label: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> list[tuple[str, str, str]]:
    """One row per differing key; a policy one side has not set at all (the
    engine's defaults, e.g. no RestartPolicy) shows its keys as "-"."""
    prefix = label.split()[0]
    old, new = old or {}, new or {}
    return [
        (
            f"{prefix} {key.replace('_', ' ')}",
            _policy_value(key, old.get(key)),
            _policy_value(key, new.get(key)),
        )
        for key in dict.fromkeys([*old, *new])
        if old.get(key) != new.get(key)
    ]


# Not drift: the engine's ForceUpdate counter. Nobody sets it to a value on
# purpose (`docker service update --force` and our rebuilt-tag apply bump it to
# re-create the tasks on the same spec), and a service created again by a
# re-deploy starts it at 0, so `force update: 2 -> 0` would say that somebody
# changed what runs when nothing did. It still tells a rollout in flight that
# somebody else wrote the service (outcome.outside_changes).
NOT_DRIFT = ("force update",)


def spec_differences(
    ours: dict[str, Any], theirs: dict[str, Any], *, ignore: Iterable[str] = ()
) -> list[tuple[str, str, str]]:
    """[(label, ours, theirs)] for every decisive part of two engine Specs that
    differs, but the labels in `ignore`; values are short text ("-" for none),
    policies field by field."""
    rows: list[tuple[str, str, str]] = []
    for label, read in DECISIVE:
        if label in ignore:
            continue
        old, new = read(ours), read(theirs)
        if old == new:
            continue
        if label.endswith("policy"):
            rows += _policy_rows(label, old, new)  # type: ignore[arg-type]
        elif label == "networks":
            if not _same_networks(old, new):
                rows.append((label, _show_networks(old), _show_networks(new)))
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
    rows = spec_differences(applied, live, ignore=NOT_DRIFT)
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


def drift_lines(found: dict[str, Any] | None) -> list[str]:
    """One line per field, in `rollout plan`'s words: `replicas: 4 -> 10`."""
    if not found:
        return []
    return [f"{label}: {old} -> {new}" for label, old, new in found["differences"]]


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
    # The canary's hold is never what runs by choice: the declared values stand.
    live = unheld(desired_from_spec(live_spec), desired_now)
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
