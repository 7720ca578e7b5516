#!/usr/bin/env python3
"""Benchmark: what one container health check costs on this machine.

The engine runs a HEALTHCHECK as an exec: dockerd asks containerd, containerd
the container's shim, the shim runs runc, runc starts the command inside the
container. For each candidate command this starts a container of our image
checking itself every --interval seconds, counts the checks the engine ran
(its exec_die events) and sums, over a window, the CPU time (user + system)
of dockerd, containerd and the container's shim together with the runc and
check processes the shim reaps. A window with an idle container, taken just
before, is the baseline subtracted from dockerd and containerd (the machine is
shared, so their background varies: several rounds, the median is printed).

    .venv/bin/python bench/healthcheck_cost.py [--rounds 3] [--window 15]

It prints CPU milliseconds per check and what a stack pays per second of CPU
for a given set of checks and intervals; it never asserts.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
IMAGE = os.environ.get("DOCKERCOINS_IMAGE", "dockercoins")
TICK = os.sysconf("SC_CLK_TCK")
LABEL = "dockercoins.bench"
# Fewer checks than this in a window means the engine stalled (the machine is
# shared): the window is reported but left out of the medians.
MIN_CHECKS = 10
# Keeps the worker's heartbeat file fresh, as the mining loop would.
HEARTBEAT_LOOP = (
    "while :; do touch /tmp/worker-alive /tmp/dockercoins-alive; sleep 1; done"
)


def variants(image: str) -> dict[str, dict]:
    """name -> image, container command, health check test."""
    return {
        "/bin/true (the exec alone)": {
            "image": f"{image}:1.0",
            "command": ["sh", "-c", HEARTBEAT_LOOP],
            "test": ["CMD", "/bin/true"],
        },
        "python healthcheck.py worker (the seed's)": {
            "image": "dockercoins:1.0",
            "command": ["sh", "-c", HEARTBEAT_LOOP],
            "test": ["CMD", "/opt/venv/bin/python", "/app/deploy/healthcheck.py"]
            + ["worker"],
        },
        "entrypoint.sh healthcheck, worker heartbeat (sh)": {
            "image": f"{image}:1.0",
            "command": [
                "sh",
                "-c",
                "echo worker >/tmp/dockercoins-role; " + HEARTBEAT_LOOP,
            ],
            "test": ["CMD", "/app/deploy/entrypoint.sh", "healthcheck"],
        },
        "redis-cli ping (the redis service's)": {
            "image": os.environ.get("REDIS_IMAGE", "dockercoins-redis:1.0"),
            "command": None,
            "test": ["CMD", "redis-cli", "ping"],
            "user": None,
        },
        "entrypoint.sh healthcheck, rng GET / (bash)": {
            "image": f"{image}:1.0",
            "command": ["rng"],
            "test": ["CMD", "/app/deploy/entrypoint.sh", "healthcheck"],
        },
    }


def proc_cpu(pid: int, *, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:  # runc and the check process, once the shim reaped them
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def engine_pids() -> tuple[int, int]:
    """The host engine's dockerd (its pid file) and the containerd it started."""
    dockerd = int(Path("/var/run/docker.pid").read_text())
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(dockerd)],
        capture_output=True,
        text=True,
        check=True,
    )
    for pid in out.stdout.split():
        if "containerd" in Path(f"/proc/{pid}/comm").read_text():
            return dockerd, int(pid)
    raise SystemExit("no containerd under the host's dockerd")


def shim_pid(container_id: str) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"containerd-shim" in args[0] and container_id.encode() in args:
            return int(entry.name)
    raise SystemExit(f"no shim found for container {container_id[:12]}")


def checks_between(client, container_id: str, since: float, until: float) -> int:
    events = client.events(
        since=since,
        until=until,
        filters={"container": container_id, "event": "exec_die"},
        decode=True,
    )
    return sum(1 for _ in events)


def window(client, container, seconds: float) -> dict:
    dockerd, containerd = engine_pids()
    shim = shim_pid(container.id)
    started = time.time()
    before = (proc_cpu(dockerd), proc_cpu(containerd), proc_cpu(shim, children=True))
    time.sleep(seconds)
    after = (proc_cpu(dockerd), proc_cpu(containerd), proc_cpu(shim, children=True))
    ended = time.time()
    used = [b - a for a, b in zip(before, after, strict=True)]
    return {
        "seconds": ended - started,
        "checks": checks_between(client, container.id, started, ended),
        "dockerd": used[0],
        "containerd": used[1],
        "shim": used[2],
    }


def run_container(client, spec: dict, interval: float):
    healthcheck = {
        "test": spec["test"],
        "interval": int(interval * 1e9),
        "timeout": int(5e9),
        "retries": 3,
    }
    return client.containers.run(
        spec["image"],
        spec["command"],
        detach=True,
        healthcheck=healthcheck if spec["test"] else None,
        labels={LABEL: "healthcheck-cost"},
        user=spec.get("user", "10001"),
    )


def measure(client, spec: dict, *, interval: float, seconds: float) -> dict:
    idle = run_container(client, {**spec, "test": ["NONE"]}, interval)
    try:
        time.sleep(2)
        base = window(client, idle, seconds)
    finally:
        idle.remove(force=True)
    checked = run_container(client, spec, interval)
    try:
        time.sleep(3)  # past the start: gunicorn up, first checks run
        busy = window(client, checked, seconds)
    finally:
        checked.remove(force=True)
    if busy["checks"] < MIN_CHECKS:  # the engine stalled: no per-check figure
        return {"checks": busy["checks"], "seconds": busy["seconds"], "ms": None}
    per_second = {k: base[k] / base["seconds"] for k in ("dockerd", "containerd")}
    checks = busy["checks"]
    cost = {
        part: (busy[part] - per_second.get(part, 0.0) * busy["seconds"]) / checks
        for part in ("dockerd", "containerd", "shim")
    }
    cost["total"] = sum(cost.values())
    return {"checks": busy["checks"], "seconds": busy["seconds"], "ms": cost}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=15.0, help="seconds")
    parser.add_argument(
        "--interval", type=float, default=0.2, help="seconds between checks"
    )
    args = parser.parse_args(argv)
    client = docker.from_env()
    print(f"image {IMAGE}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name, spec in variants(IMAGE).items():
            run = measure(client, spec, interval=args.interval, seconds=args.window)
            results.setdefault(name, []).append(run)
            if run["ms"] is None:
                print(f"  {name}: only {run['checks']} checks, left out", flush=True)
                continue
            ms = {k: round(v * 1000, 1) for k, v in run["ms"].items()}
            print(f"  {name}: {run['checks']} checks, ms/check {ms}", flush=True)
    print(
        f"\nCPU per check, median of {args.rounds} (ms; load now "
        f"{os.getloadavg()[0]:.2f})"
    )
    print(
        f"{'check':<50} {'dockerd':>8} {'ctrd':>6} {'shim+runc+cmd':>14} {'total':>6}"
    )
    for name, every in results.items():
        runs = [run for run in every if run["ms"] is not None]
        if not runs:
            print(f"{name:<50} (no window with enough checks)")
            continue
        med = {
            part: statistics.median(r["ms"][part] for r in runs) * 1000
            for part in ("dockerd", "containerd", "shim", "total")
        }
        print(
            f"{name:<50} {med['dockerd']:8.1f} {med['containerd']:6.1f}"
            f" {med['shim']:14.1f} {med['total']:6.1f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / time.strftime("healthcheck-cost-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
