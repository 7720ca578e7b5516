"""The workshop's scaling table, measured on the local swarm.

Deploys a stack of its own (dockercoins-bench-<random>, free ports, default
delays of 0.1 s everywhere), then for each row sets the worker and rng
replicas, lets the rate settle, and measures hashes/s from the webui's /json
over a fixed window. The stack is removed at the end, also on failure.

    .venv/bin/python bench/scaling.py [--window 30] [--warmup 10]

The figures are the workshop's (classic DockerCoins on a 5-node cluster) and
ours; the shape is the lesson, not the absolute numbers.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.stacks import Stack, deployed_stack, docker  # noqa: E402
from deploy.swarmops.engine import has_ipvs  # noqa: E402
from deploy.swarmops.layout import BENCH_PREFIX  # noqa: E402

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Row:
    workers: int
    rngs: int
    workshop: str
    why: str

    @property
    def label(self) -> str:
        return f"{self.workers} worker{'s' * (self.workers > 1)}, {self.rngs} rng"


ROWS = [
    Row(1, 1, "3.2", "one hash = 0.1 s sleep + 0.1 s rng + 0.1 s hasher: ~3/s"),
    Row(2, 1, "6.4", "two workers overlap: about double; rng now busy 2/3 of the time"),
    Row(
        10,
        1,
        "9.9",
        "rng serves one request at a time, 0.1 s each: 10/s per replica, "
        "the other workers queue",
    ),
    Row(
        10,
        5,
        "~35",
        "five rng replicas lift the ceiling to 50/s; ten workers at ~0.3 s a "
        "hash make about 33, each spreading its requests over all five",
    ),
]


def set_rng(stack: Stack, replicas: int) -> None:
    args = ["service", "update", "--detach", "--quiet", "--replicas", str(replicas)]
    if replicas > 1 and not has_ipvs():
        # A host-mode published port allows one task per node: without IPVS
        # (no routing mesh) rng can only run several replicas unpublished.
        # The workshop's `mode: global` has the same one-per-node shape.
        args += ["--publish-rm", "mode=host,target=80"]
    docker(*args, stack.service("rng"))
    stack.wait()
    # The workers are not restarted: they resolve tasks.rng again every few
    # seconds (mining/balance.py) and spread over the new tasks by themselves,
    # well within the warm-up.


def measure(stack: Stack, row: Row, *, warmup: float, window: float) -> float:
    rngs = current_replicas(stack, "rng")
    if rngs != row.rngs:
        set_rng(stack, row.rngs)
    if current_replicas(stack, "worker") != row.workers:
        stack.scale("worker", row.workers)
    time.sleep(warmup)
    return stack.rate(window)


def current_replicas(stack: Stack, short: str) -> int:
    out = docker(
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
        stack.service(short),
    )
    return int(out.strip())


def print_table(results: list[tuple[Row, float]]) -> None:
    print()
    print(f"{'setup':<20} {'workshop':>9} {'ours':>7}  why")
    for row, rate in results:
        print(f"{row.label:<20} {row.workshop:>9} {rate:>7.1f}  {row.why}")
    print("(hashes per second; rng and hasher delays 0.1 s, worker delay 0.1 s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--window", type=float, default=30.0, help="seconds measured per row"
    )
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds before measuring"
    )
    parser.add_argument(
        "--rows",
        default="1,2,3,4",
        help="which rows of the table to measure, by number (default all: 1,2,3,4)",
    )
    args = parser.parse_args(argv)
    rows = [ROWS[int(n) - 1] for n in args.rows.split(",")]

    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    started = time.monotonic()
    results: list[tuple[Row, float]] = []
    with deployed_stack(
        {"WORKER_REPLICAS": "1", "RNG_DELAY": "0.1", "HASHER_DELAY": "0.1"},
        prefix=BENCH_PREFIX,
    ) as stack:
        print(
            f"stack {stack.name} up after {time.monotonic() - started:.0f}s", flush=True
        )
        for row in rows:
            rate = measure(stack, row, warmup=args.warmup, window=args.window)
            print(f"  {row.label}: {rate:.1f} hashes/s", flush=True)
            results.append((row, rate))
    print_table(results)
    print(
        f"total {time.monotonic() - started:.0f}s (window {args.window:.0f}s per row);"
        f" load {os.getloadavg()[0]:.2f}"
    )

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"scaling-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            [
                {
                    "workers": r.workers,
                    "rngs": r.rngs,
                    "workshop": r.workshop,
                    "hashes_per_s": round(rate, 2),
                }
                for r, rate in results
            ],
            indent=2,
        )
    )
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
