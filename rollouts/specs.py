"""Pure translations between our desired fields and the engine's service spec.

No Docker here: these functions take and return the plain dicts the Engine API
speaks (durations in nanoseconds), so they are tested without an engine.
"""

import copy
import math
import re
from datetime import datetime

from django.utils.dateparse import parse_datetime

NS = 1_000_000_000

# What the engine uses when a spec has no UpdateConfig / RollbackConfig at all
# (`docker service create` without flags). The SDK's own defaults differ
# (parallelism 0 = all at once, failure action continue), which is why every
# write sets every field.
ENGINE_POLICY_DEFAULTS = {
    "parallelism": 1,
    "delay": 0.0,
    "failure_action": "pause",
    "monitor": 5.0,
    "max_failure_ratio": 0.0,
    "order": "stop-first",
}
POLICY_KEYS = {
    "parallelism": "Parallelism",
    "delay": "Delay",
    "failure_action": "FailureAction",
    "monitor": "Monitor",
    "max_failure_ratio": "MaxFailureRatio",
    "order": "Order",
}
_DURATIONS = {"delay", "monitor"}

# Fields of the desired spec that live in the swarm (the rest, progress deadline
# and deadline action, are ours alone).
SWARM_FIELDS = (
    "image",
    "tag",
    "mode",
    "replicas",
    *(f"{prefix}_{key}" for prefix in ("update", "rollback") for key in POLICY_KEYS),
)


def to_ns(seconds: float) -> int:
    return int(round(seconds * NS))


def from_ns(value: int | None) -> float:
    return (value or 0) / NS


def policy_config(desired: dict, prefix: str) -> dict:
    """The UpdateConfig (prefix "update") or RollbackConfig, every field set."""
    config = {}
    for key, engine_key in POLICY_KEYS.items():
        value = desired[f"{prefix}_{key}"]
        if key in _DURATIONS:
            value = to_ns(value)
        elif key == "max_failure_ratio":
            value = float(value)
        config[engine_key] = value
    return config


def policy_from_config(config: dict | None) -> dict:
    """Our policy fields from an engine config, with the engine's meaning of gaps.

    A missing config means the engine defaults. Inside a config the engine omits
    zero values, and a zero Monitor means its default of 5 s.
    """
    if config is None:
        return dict(ENGINE_POLICY_DEFAULTS)
    return {
        "parallelism": int(config.get("Parallelism", 0)),
        "delay": from_ns(config.get("Delay")),
        "failure_action": config.get("FailureAction") or "pause",
        "monitor": from_ns(config.get("Monitor")) or ENGINE_POLICY_DEFAULTS["monitor"],
        "max_failure_ratio": round(float(config.get("MaxFailureRatio") or 0), 6),
        "order": config.get("Order") or "stop-first",
    }


_REFERENCE = re.compile(
    r"^(?P<repo>(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+:[a-fA-F0-9]{32,}))?$"
)
TAG_PATTERN = re.compile(r"^[\w][\w.-]{0,127}$")


def parse_image(reference: str) -> tuple[str, str, str] | None:
    """(repository, tag, digest) of an image reference; None when it is invalid.

    The tag defaults to "latest" as in Docker; the digest is "" when unpinned.
    """
    match = _REFERENCE.match(reference or "")
    if not match:
        return None
    return match["repo"], match["tag"] or "latest", match["digest"] or ""


def spec_mode(spec: dict) -> tuple[str, int | None]:
    mode = spec.get("Mode") or {}
    if "Global" in mode:
        return "global", None
    return "replicated", int((mode.get("Replicated") or {}).get("Replicas", 1))


def desired_from_spec(spec: dict) -> dict:
    """The swarm half of our desired fields, as the engine has them now."""
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    repo, tag, _ = parse_image(image) or (image, "latest", "")
    mode, replicas = spec_mode(spec)
    desired = {"image": repo, "tag": tag, "mode": mode, "replicas": replicas}
    for prefix, key in (("update", "UpdateConfig"), ("rollback", "RollbackConfig")):
        for field, value in policy_from_config(spec.get(key)).items():
            desired[f"{prefix}_{field}"] = value
    return desired


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


def task_fingerprint(task_spec: dict) -> tuple:
    """What identifies the spec a task runs; the engine's task copy of the
    template omits some defaults, so compare only what an update changes."""
    container = task_spec.get("ContainerSpec") or {}
    return (
        container.get("Image"),
        tuple(container.get("Command") or ()),
        tuple(container.get("Args") or ()),
        tuple(sorted(container.get("Env") or ())),
        tuple(sorted((task_spec.get("Placement") or {}).get("Constraints") or ())),
        task_spec.get("ForceUpdate", 0),
    )


def parse_engine_time(value: str | None) -> datetime | None:
    """Engine timestamps carry nanoseconds; Python keeps microseconds."""
    if not value:
        return None
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    return parse_datetime(value.replace("Z", "+00:00"))


def short_image(image: str) -> str:
    return image.split("@", 1)[0]


def task_row(task: dict, nodes: dict[str, str]) -> dict:
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    return {
        "id": task["ID"],
        "image": short_image(task["Spec"]["ContainerSpec"]["Image"]),
        "node": nodes.get(task.get("NodeID", ""), task.get("NodeID", "")),
        "desired_state": task.get("DesiredState", ""),
        "state": status.get("State", ""),
        "error": status.get("Err", ""),
        "message": status.get("Message", ""),
        "exit_code": container.get("ExitCode"),
        "since": status.get("Timestamp", ""),
        "created": task.get("CreatedAt", ""),
    }


def group_tasks(tasks: list[dict], nodes: dict[str, str]) -> list[dict]:
    """`docker service ps`, grouped: one entry per slot (per node for a global
    service), its tasks newest first; the older ones are the `\\_` rows."""
    groups: dict[str, list[dict]] = {}
    for task in tasks:
        key = str(task["Slot"]) if task.get("Slot") else nodes.get(task["NodeID"], "")
        groups.setdefault(key, []).append(task_row(task, nodes))
    ordered = sorted(groups.items(), key=lambda item: _slot_key(item[0]))
    return [
        {"slot": slot, "tasks": sorted(rows, key=lambda r: r["created"], reverse=True)}
        for slot, rows in ordered
    ]


def _slot_key(slot: str) -> tuple:
    return (0, int(slot), "") if slot.isdigit() else (1, 0, slot)


# --- plan --------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, rest = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if rest or not (hours or minutes):
        parts.append(f"{rest:g}s")
    return "".join(parts)


def parse_duration(text: str) -> float:
    """Seconds from "5", "5s", "500ms", "1m30s", "2h"; ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration (e.g. 5s, 500ms, 1m30s)")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def _human(field: str, value) -> str:
    if value is None:
        return "-"
    if field.endswith(("_delay", "_monitor")) or field in (
        "progress_deadline",
        "stable_for",
    ):
        return human_duration(value)
    if field.endswith("_parallelism") and value == 0:
        return "0 (all at once)"
    if field.endswith("_ratio"):
        return f"{value:g}"
    return str(value)


LABELS = {
    "image": "image",
    "mode": "mode",
    "replicas": "replicas",
    **{
        f"{prefix}_{key}": f"{prefix} {key.replace('_', ' ')}"
        for prefix in ("update", "rollback")
        for key in POLICY_KEYS
    },
}


def spec_diff(live: dict, desired: dict) -> list[tuple[str, str, str]]:
    """[(label, live, desired)] for every swarm field that differs, in human units."""
    live = {**live, "image": f"{live['image']}:{live['tag']}"}
    desired = {**desired, "image": f"{desired['image']}:{desired['tag']}"}
    rows = []
    for field, label in LABELS.items():
        old, new = live.get(field), desired.get(field)
        if isinstance(old, float) or isinstance(new, float):
            same = old is not None and new is not None and math.isclose(old, new)
        else:
            same = old == new
        if not same:
            rows.append((label, _human(field, old), _human(field, new)))
    return rows


def expected_duration(live: dict, desired: dict, tasks: int) -> str:
    """A rough estimate of how long applying `desired` over `live` takes; `tasks`
    is how many tasks a global service runs (ignored when replicated)."""
    if live["mode"] != desired["mode"]:
        return "re-creation: the service is removed, then created again (brief outage)"
    if (live["image"], live["tag"]) == (desired["image"], desired["tag"]):
        return "a few seconds (no rolling update: tasks are only added or removed)"
    if desired["mode"] == "replicated":
        tasks = desired["replicas"]
    if not tasks:
        return "a few seconds (no task runs this spec)"
    parallelism = desired["update_parallelism"] or tasks
    batches = math.ceil(tasks / parallelism)
    delay, monitor = desired["update_delay"], desired["update_monitor"]
    total = (batches - 1) * delay + monitor + batches * 2
    return (
        f"about {human_duration(total)}: {batches} batch(es) of up to {parallelism} "
        f"task(s), {human_duration(delay)} apart, {human_duration(monitor)} monitor "
        f"after the last, ~2s start-up per batch"
    )
