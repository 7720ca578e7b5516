#!/usr/bin/env python3
"""Where the latency tail comes from: bench/pipeline.py's tail load (16
keep-alive connections from wrk, loopback, every delay 0) on each endpoint,
with one thing changed at a time.

Endpoints: rng GET /32 (1 gunicorn worker), hasher POST of 32 bytes (2),
webui GET /json (2), and bench/hello_wsgi.py (a do-nothing app: gunicorn and
gevent alone) with rng's settings (1 worker) and the webui's (2).

Variants, each on freshly started servers:
- image:   deploy/gunicorn.conf.py as the image runs it;
- greedy:  no turn-taking (deploy/gunicorn.conf.py's take_turns off): a
           keep-alive connection keeps its worker while its client answers
           at once, as before the image took turns;
- timer:   turns taken with a 1 us timer instead of gevent.sleep(0): the
           greenlet resumes only after the hub polled the sockets;
- disk:    gunicorn's worker heartbeat files (worker_tmp_dir) and the
           Prometheus samples' files (PROMETHEUS_MULTIPROC_DIR) in /tmp, on
           disk outside a container, as before the image moved them to
           /dev/shm (memory): a write to an mmap'd page the kernel is writing
           back, or an fchmod behind a journal commit, stops the whole worker;
- gc-off:  Python's garbage collector off in the servers;
- freeze:  gc.freeze() once a worker has loaded the app (its start-up heap is
           never scanned again);
- pinned:  the servers (and Redis) on CPU 0, wrk on CPU 1 (taskset);
- workers: the other worker count (rng 2, the others 1);
- wrk-1t:  wrk with one thread instead of two (less of the load generator
           competing for the two cores).

Beside the figures: the servers' worker processes' CPU and their time
waiting for a CPU (/proc/PID/schedstat: runnable but not running), wrk's CPU,
everyone else's CPU over the same seconds (/proc/stat), and how late each
worker's event loop woke from 5 ms sleeps (bench/diag/sitecustomize.py).

In every variant the servers record each garbage collection
(bench/diag/sitecustomize.py): the passes of the oldest generation and the
longest pause inside the measured seconds are printed with the figures. It
prints and saves figures (bench/results/tails-*.json) and never asserts.

    .venv/bin/python bench/tails.py [--seconds 8] [--variants image gc-off]
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline  # type: ignore[import-not-found]  # noqa: E402

ROOT = pipeline.ROOT
DIAG = ROOT / "bench" / "diag"
HELLO = "hello_wsgi:application"
# name: (role whose settings serve it, app, path, POST body bytes)
ENDPOINTS = {
    "rng /32": ("rng", "dockercoins.wsgi:application", "/32", 0),
    "hasher": ("hasher", "dockercoins.wsgi:application", "/", pipeline.HASH_BYTES),
    "webui /json": ("webui", "dockercoins.wsgi:application", "/json", 0),
    "hello (1 worker)": ("rng", HELLO, "/", 0),
    "hello (2 workers)": ("webui", HELLO, "/", 0),
}
VARIANTS = (
    "image",
    "greedy",
    "disk",
    "gc-off",
    "freeze",
    "pinned",
    "workers",
    "wrk-1t",
)
OTHER_WORKERS = {"rng": 2, "hasher": 1, "webui": 1}


def measure(name: str, variant: str, options) -> dict:
    role, app, path, body = ENDPOINTS[name]
    gc_dir = Path(tempfile.mkdtemp(prefix="dockercoins-tails-gc-"))
    env = {
        "PYTHONPATH": str(DIAG),
        "TAILS_GC_DIR": str(gc_dir),
        "TAILS_GC": {"gc-off": "off", "freeze": "freeze"}.get(variant, ""),
        "TAILS_GREEDY": {"greedy": "1", "timer": "timer"}.get(variant, ""),
    }
    server = ["taskset", "-c", "0"] if variant == "pinned" else []
    client = ["taskset", "-c", "1"] if variant == "pinned" else []
    extra = [f"--workers={OTHER_WORKERS[role]}"] if variant == "workers" else []
    if variant == "disk":
        extra.append("--worker-tmp-dir=/tmp")
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="dockercoins-tails-metrics-", dir="/tmp"
        )
    stack = pipeline.Stack()
    try:
        if role == "webui":
            stack.start_redis()
            if server:
                os.sched_setaffinity(stack.roles["redis"], {0})
        url = stack.serve(role, extra, app=app, env=env, prefix=server)
        pipeline.warm_up(url, path, connections=options.connections, body_bytes=body)
        family = _family(stack.roles[role])
        before = _machine(family)
        started = time.time()
        run = pipeline.run_load(
            url,
            path,
            connections=options.connections,
            seconds=options.seconds,
            body_bytes=body,
            prefix=client,
            threads=1 if variant == "wrk-1t" else None,
        )
        ended = time.time()
        after = _machine(family)
    finally:
        stack.stop()  # the workers write their GC records as they exit
    passes: list[list[float]] = []
    lags: list[list[float]] = []
    for record in gc_dir.glob("*.json"):
        rows = [p for p in json.loads(record.read_text()) if started <= p[0] <= ended]
        (lags if record.name.endswith(".lag.json") else passes).extend(rows)
    shutil.rmtree(gc_dir, ignore_errors=True)
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    oldest = [p for p in passes if p[1] == 2]
    wall = ended - started
    share = {k: round((after[k] - before[k]) / wall * 100) for k in after}
    late = sorted(lag for _, lag in lags)
    return {
        "endpoint": name,
        "variant": variant,
        **asdict(run),
        # percent of one CPU over the measured seconds
        "server_cpu_pct": share["server_cpu"],
        "server_waiting_pct": share["server_wait"],
        "wrk_cpu_pct": share["children_cpu"],
        "others_cpu_pct": share["busy"] - share["server_cpu"] - share["children_cpu"],
        "disk_busy_pct": share["disk_busy"],
        "loop_late_p99_ms": round(_pct(late, 0.99) * 1000, 1),
        "loop_late_max_ms": round((late[-1] if late else 0) * 1000, 1),
        "gc_passes": len(passes),
        "gc_gen2_passes": len(oldest),
        "gc_gen2_longest_ms": round(max((p[2] for p in oldest), default=0) * 1000, 1),
        "gc_longest_ms": round(max((p[2] for p in passes), default=0) * 1000, 1),
    }


def _pct(ordered: list[float], share: float) -> float:
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)] if ordered else 0


def _family(root: int) -> list[int]:
    """The gunicorn master's worker processes."""
    children = Path(f"/proc/{root}/task/{root}/children")
    return [int(pid) for pid in children.read_text().split()]


def _machine(workers: list[int]) -> dict[str, float]:
    """Seconds so far: the workers' CPU and run-queue wait (schedstat), this
    process's reaped children's CPU (wrk, once it returned), the machine's busy
    CPU (/proc/stat, every CPU)."""
    cpu = wait = 0.0
    for pid in workers:
        try:
            on_cpu, waited, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
        except OSError:
            continue
        cpu, wait = cpu + int(on_cpu) / 1e9, wait + int(waited) / 1e9
    times = os.times()
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return {
        "server_cpu": cpu,
        "server_wait": wait,
        "children_cpu": times.children_user + times.children_system,
        "busy": busy,
        "disk_busy": _disk_busy_seconds(),
    }


def _disk_busy_seconds() -> float:
    """Seconds the disks have had I/O in flight so far (/proc/diskstats)."""
    total = 0.0
    for line in Path("/proc/diskstats").read_text().splitlines():
        fields = line.split()
        if re.fullmatch(r"(sd|vd|xvd)[a-z]+|nvme\d+n\d+", fields[2]):
            total += int(fields[12]) / 1000
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS))
    options = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/tails.py needs wrk (deploy/bootstrap.sh --bench)")
    print(f"before: {pipeline.load()}")
    rows = []
    for name in options.endpoints:
        print(f"\n{name}")
        for variant in options.variants:
            row = measure(name, variant, options)
            rows.append(row)
            print(
                f"  {variant:8} {row['requests_per_second']:7.0f} req/s"
                f"  p50 {row['p50_ms']:6.2f}  p99 {row['p99_ms']:6.2f}"
                f"  p99.9 {row['p999_ms']:6.2f}  max {row['max_ms']:6.1f} ms"
                f"  errors {row['errors']};  GC: {row['gc_passes']} passes,"
                f" {row['gc_gen2_passes']} of the oldest generation (longest"
                f" {row['gc_gen2_longest_ms']} ms), longest {row['gc_longest_ms']} ms",
                flush=True,
            )
            print(
                f"           CPU % of one core: server {row['server_cpu_pct']},"
                f" server waiting for a CPU {row['server_waiting_pct']},"
                f" wrk {row['wrk_cpu_pct']}, others {row['others_cpu_pct']};"
                f" disk busy {row['disk_busy_pct']}%;"
                f" event loop late p99 {row['loop_late_p99_ms']} ms,"
                f" max {row['loop_late_max_ms']} ms",
                flush=True,
            )
    print(f"\nafter: {pipeline.load()}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / time.strftime("tails-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps({"options": vars(options), "rows": rows}, indent=2))
    print(f"figures saved to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
