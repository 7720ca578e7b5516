#!/usr/bin/env python3
"""Benchmark: a rolling update of the worker, ours and the engine's, side by side.

Deploys a stack of its own (dockercoins-bench-<random>, free ports) with
--tasks worker replicas and the stack file's update policy (parallelism 1,
delay 0 s, monitor 5 s, stop-first), then alternates, --rounds times:

1. ours: `manage.py rollout apply worker --image-tag 1.1 --wait` (on the host,
   its own SQLite file; it drives the rollout itself, as the command does when
   no controller holds it), timed until the command returns;
2. the engine's: `docker service update --image <image>:1.0 <stack>_worker`,
   which also waits until the update completed.

From the engine's events it splits the plain update into its parts: per task,
the old container's kill to the new one's start in the same slot (stop and
start), and the wait after the last start (the monitor window). Their sum is
the floor no health check setting can go under. The stack is removed at the
end, also on failure.

    .venv/bin/python bench/rollout.py [--tasks 10] [--rounds 1]
    .venv/bin/python bench/rollout.py --tasks 1 --root /path/to/seed/checkout

--root deploys with another checkout's stack files and drives with its
manage.py (the seed's, for before/after figures); DOCKERCOINS_IMAGE picks the
images. --compare adds, in every round, another checkout's command (main's,
for before/after figures in one run) and one more `docker service update`
after it:

    .venv/bin/python bench/rollout.py --tasks 1 --rounds 3 --compare /path/to/main
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy import stacks  # noqa: E402
from deploy.swarmops.layout import BENCH_PREFIX  # noqa: E402
from deploy.swarmops.procs import StackError, run  # noqa: E402

RESULTS = ROOT / "bench" / "results"
IMAGE = os.environ.get("DOCKERCOINS_IMAGE", "dockercoins")


class Ours:
    """`manage.py rollout` of a checkout, with a database of its own."""

    def __init__(self, root: Path, stack: str, tmp: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "DATABASE_PATH": str(tmp / "bench.sqlite3"),
            "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
            "STACK_NAME": stack,
            "LOG_LEVEL": "WARNING",
        }
        self.manage("migrate", "--noinput", timeout=120)

    def manage(self, *args: str, timeout: float) -> str:
        try:
            return run(
                [sys.executable, "manage.py", *args],
                cwd=self.root,
                env=self.env,
                timeout=timeout,
            )
        except StackError as exc:
            raise SystemExit(str(exc)) from exc


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def events(service: str, since: float, until: float) -> list[dict]:
    out = stacks.docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{until:.3f}",
        "--filter",
        "type=container",
        "--filter",
        f"label=com.docker.swarm.service.name={service}",
        "--format",
        "{{json .}}",
        timeout=60,
    )
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def breakdown(service: str, since: float, until: float) -> dict:
    """Medians per task: the old container's stop (kill -> die) and the
    replacement (old container's kill -> new container's start, in the same
    slot: the engine creates the new container while the old one stops); and
    the time from the last start to the end."""
    moments: dict[str, dict[str, float]] = {}
    slot_of: dict[str, str] = {}
    for event in events(service, since, until):
        action = event.get("status") or event.get("Action", "")
        name = event.get("Actor", {}).get("Attributes", {}).get("name", "")
        slot_of[event["id"]] = name.split(".")[1] if name.count(".") >= 2 else ""
        moments.setdefault(event["id"], {}).setdefault(action, event["timeNano"] / 1e9)
    stops, replaces = [], []
    for old, seen in moments.items():
        if not {"kill", "die"} <= seen.keys():
            continue
        stops.append(seen["die"] - seen["kill"])
        started = [
            m["start"]
            for new, m in moments.items()
            if new != old and slot_of[new] == slot_of[old] and "start" in m
        ]
        if started:
            replaces.append(min(started) - seen["kill"])
    starts = sorted(m["start"] for m in moments.values() if "start" in m)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    return {
        "stop_s": statistics.median(stops) if stops else 0.0,
        "replace_s": statistics.median(replaces) if replaces else 0.0,
        # One task to the next: the replacement plus the engine's own turn
        # (the agent reports "running", the updater picks the next slot).
        "cycle_s": statistics.median(gaps) if gaps else 0.0,
        "after_last_start_s": until - (starts[-1] if starts else until),
    }


def _epoch(text: str) -> float | None:
    """An engine time (RFC 3339, nanoseconds) as seconds since the epoch."""
    from datetime import datetime

    if not text or text.startswith("0001-"):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def phases(service: str, since: float, until: float) -> dict:
    """Where one update's time went, in seconds from the command's start
    (`since`, this host's clock: on one node the engine's is the same): the
    engine's UpdateStatus.StartedAt (the write), the last new container's
    start, UpdateStatus.CompletedAt (the engine's own verdict, one monitor
    window after it saw the last task running), and the command's return."""
    raw = stacks.docker(
        "service", "inspect", "--format", "{{json .UpdateStatus}}", service
    ).strip()
    status = json.loads(raw) if raw and raw != "null" else {}
    starts = [
        m["start"] for m in _moments(service, since, until).values() if "start" in m
    ]

    def rel(moment: float | None) -> float | None:
        return None if moment is None else round(moment - since, 2)

    return {
        "write_s": rel(_epoch(status.get("StartedAt", ""))),
        "last_start_s": rel(max(starts) if starts else None),
        "engine_completed_s": rel(_epoch(status.get("CompletedAt", ""))),
        "returned_s": rel(until),
    }


def _moments(service: str, since: float, until: float) -> dict[str, dict[str, float]]:
    moments: dict[str, dict[str, float]] = {}
    for event in events(service, since, until):
        action = event.get("status") or event.get("Action", "")
        moments.setdefault(event["id"], {}).setdefault(action, event["timeNano"] / 1e9)
    return moments


def describe_phases(label: str, part: dict) -> str:
    def shown(key: str) -> str:
        value = part.get(key)
        return "?" if value is None else f"{value:.2f}"

    return (
        f"    {label}: write +{shown('write_s')} s, new container started"
        f" +{shown('last_start_s')} s, engine completed"
        f" +{shown('engine_completed_s')} s, returned +{shown('returned_s')} s"
    )


def update_monitor(service: str) -> float:
    """The service's update monitor window, in seconds (engine default 5 s)."""
    out = stacks.docker(
        "service", "inspect", "--format", "{{json .Spec.UpdateConfig.Monitor}}", service
    ).strip()
    return int(out) / 1e9 if out.isdigit() else 5.0


def apply_wait(ours: Ours, worker: str, tag: str = "1.1") -> tuple[float, dict]:
    """`rollout apply worker --image-tag TAG --wait`: seconds, and its phases."""
    since = time.time()
    took = timed(
        lambda: ours.manage(
            "rollout",
            "apply",
            worker.split("_", 1)[1],
            "--image-tag",
            tag,
            "--wait",
            timeout=1800,
        )
    )
    return took, phases(worker, since, time.time())


def docker_update(worker: str, tag: str = "1.0") -> tuple[float, float, float]:
    """`docker service update --image <image>:TAG`: seconds, its start and end."""
    since = time.time()
    took = timed(
        lambda: stacks.docker(
            "service",
            "update",
            "--quiet",
            "--image",
            f"{IMAGE}:{tag}",
            worker,
            timeout=1800,
        )
    )
    return took, since, time.time()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10, help="worker replicas")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="checkout to deploy and drive from"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout whose command runs too, each round",
    )
    parser.add_argument(
        "--swap",
        action="store_true",
        help="every other round, update 1.1 -> 1.0 (each side both ways)",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    print(
        f"{args.tasks} worker tasks, parallelism 1, image {IMAGE}, checkout {root};"
        f" load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    rows = []
    started = time.monotonic()
    with (
        stacks.deployed_stack(
            {"WORKER_REPLICAS": str(args.tasks)},
            prefix=BENCH_PREFIX,
            compose_dir=root / "deploy",
        ) as stack,
        tempfile.TemporaryDirectory(prefix="dockercoins-bench-") as tmp,
    ):
        print(
            f"stack {stack.name} up after {time.monotonic() - started:.0f} s",
            flush=True,
        )
        ours = Ours(root, stack.name, Path(tmp))
        other = None
        if args.compare:
            (Path(tmp) / "compare").mkdir()
            other = Ours(args.compare.resolve(), stack.name, Path(tmp) / "compare")
        worker = stack.service("worker")
        monitor_s = update_monitor(worker)
        current = "1.0"  # what the stack file deploys
        for number in range(args.rounds):
            # --swap: every other round the engine's update goes first, so
            # that each side updates 1.0 -> 1.1 and 1.1 -> 1.0 alike.
            there, back = ("1.0", "1.1") if args.swap and number % 2 else ("1.1", "1.0")
            if current != back:  # not timed: only sets the starting point
                docker_update(worker, back)
            ours_s, ours_phases = apply_wait(ours, worker, there)
            docker_s, since, until = docker_update(worker, back)
            current = back
            parts = breakdown(worker, since, until)
            docker_phases = phases(worker, since, until)
            rows.append(
                {
                    "ours_s": ours_s,
                    "docker_s": docker_s,
                    **parts,
                    "ours_phases": ours_phases,
                    "docker_phases": docker_phases,
                }
            )
            if other is not None:
                other_s, other_phases = apply_wait(other, worker, there)
                again_s, since, until = docker_update(worker, back)
                rows[-1].update(
                    compare_s=other_s,
                    compare_docker_s=again_s,
                    compare_phases=other_phases,
                    compare_docker_phases=phases(worker, since, until),
                )
                print(
                    f"  {args.compare.name}: {other_s:6.1f} s   docker service update"
                    f" {again_s:6.1f} s   ratio {other_s / again_s:.2f}",
                    flush=True,
                )
                print(describe_phases("compare", other_phases), flush=True)
            print(
                f"  ours {ours_s:6.1f} s   docker service update {docker_s:6.1f} s"
                f"   ratio {ours_s / docker_s:.2f}   (per task: old stopped in"
                f" {parts['stop_s']:.1f} s, new started {parts['replace_s']:.1f} s"
                f" after the old one's kill, next task {parts['cycle_s']:.1f} s"
                f" later; after the last start"
                f" {parts['after_last_start_s']:.1f} s)",
                flush=True,
            )
            print(describe_phases("ours  ", ours_phases), flush=True)
            print(describe_phases("docker", docker_phases), flush=True)
    ours_med = statistics.median(r["ours_s"] for r in rows)
    docker_med = statistics.median(r["docker_s"] for r in rows)
    if args.compare:
        other_med = statistics.median(r["compare_s"] for r in rows)
        again_med = statistics.median(r["compare_docker_s"] for r in rows)
        print(
            f"\n{args.compare}, median of {len(rows)}: {other_med:.1f} s,"
            f" docker service update {again_med:.1f} s,"
            f" ratio {other_med / again_med:.2f}"
        )
    per_task = statistics.median(r["replace_s"] for r in rows)
    after = statistics.median(r["after_last_start_s"] for r in rows)
    print(
        f"\n{args.tasks}-task update, median of {len(rows)}: ours {ours_med:.1f} s,"
        f" docker service update {docker_med:.1f} s, ratio {ours_med / docker_med:.2f}"
    )
    # The floor: what the engine itself takes from one task to the next, and
    # after the last start the monitor window (read from the service's own
    # update policy); a health check adds its first interval to both.
    cycle = statistics.median(r["cycle_s"] for r in rows)
    floor = args.tasks * cycle + monitor_s
    print(
        f"per task: kill to the new start {per_task:.1f} s, one task to the next"
        f" {cycle:.1f} s; floor {args.tasks} x {cycle:.1f} s + monitor window"
        f" {monitor_s:.0f} s = {floor:.1f} s (ours at {ours_med / floor:.2f}x it);"
        f" waited after the last start: {after:.1f} s; load now"
        f" {os.getloadavg()[0]:.2f}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / time.strftime("rollout-%Y%m%d-%H%M%S.json")
    out.write_text(
        json.dumps(
            {
                "tasks": args.tasks,
                "image": IMAGE,
                "root": str(root),
                "compare": str(args.compare or ""),
                "rounds": rows,
            },
            indent=2,
        )
    )
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
