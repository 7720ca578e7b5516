"""The workshop's scaling table on a real multi-node swarm (deploy/lab.sh).

Forms a lab of N engines on this machine (its own id and /24, never the one of
`make up NODES=N`), deploys a stack on it, and measures hashes/s from the
webui's /json: 1, 2 and 10 workers with one rng, then 10 workers with rng made
global by our own controller (`manage.py rollout apply rng --mode global`, the
workshop's step 4), one rng task per node. Every figure is printed beside the
model and the workshop's, as ratios. The lab is torn down at the end, also on
failure. Needs root (namespaces).

    .venv/bin/python bench/lab.py [--nodes 3 4 5] [--window 20] [--warmup 10]
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.labs import LabStack, namespaces_unavailable, running_lab  # noqa: E402
from deploy.polling import wait_until  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# One hash is a 0.1 s worker sleep, a 0.1 s rng call and a 0.1 s hasher call;
# an rng task serves one request at a time (10/s).
CYCLE = 0.3
RNG_RATE = 10.0
WORKSHOP = {(1, "1"): "3.2", (2, "1"): "6.4", (10, "1"): "9.9"}
WORKSHOP_GLOBAL = "~35 (5 nodes)"


def model(workers: int, rngs: int) -> float:
    return min(workers / CYCLE, rngs * RNG_RATE)


def scale_workers(stack: LabStack, workers: int) -> None:
    stack.lab.docker(
        "service", "scale", "--detach", f"{stack.service('worker')}={workers}"
    )
    wait_until(
        lambda: len(stack.running_nodes("worker")) == workers,
        timeout=300,
        interval=1,
        message=f"{workers} running workers",
    )


def measure(stack: LabStack, *, warmup: float, window: float) -> float:
    time.sleep(warmup)
    return stack.rate(window)


def bench_lab(nodes: int, *, first: bool, warmup: float, window: float) -> list[dict]:
    rows = []
    with running_lab(nodes, lab_id="db", net="10.213.2") as lab, lab.stack() as stack:
        if first:
            for workers in (1, 2, 10):
                scale_workers(stack, workers)
                rate = measure(stack, warmup=warmup, window=window)
                rows.append(row(nodes, workers, "1", 1, rate, WORKSHOP[(workers, "1")]))
        done = stack.manage(
            "rollout",
            "apply",
            "rng",
            "--mode",
            "global",
            "--confirm-recreate",
            "--wait",
        )
        if done.returncode != 0:
            raise SystemExit(f"making rng global failed:\n{done.stdout}{done.stderr}")
        wait_until(
            lambda: len(stack.running_nodes("rng")) == nodes,
            timeout=180,
            message="one rng task per node",
        )
        scale_workers(stack, 10)
        rate = measure(stack, warmup=warmup, window=window)
        rows.append(row(nodes, 10, f"global ({nodes})", nodes, rate, WORKSHOP_GLOBAL))
    return rows


def row(nodes: int, workers: int, rng: str, rngs: int, rate: float, shop: str) -> dict:
    result = {
        "nodes": nodes,
        "workers": workers,
        "rng": rng,
        "hashes_per_s": round(rate, 2),
        "model": round(model(workers, rngs), 1),
        "workshop": shop,
    }
    print(
        f"  {nodes} nodes, {workers} workers, rng {rng}: {rate:.1f} hashes/s",
        flush=True,
    )
    return result


def print_table(rows: list[dict]) -> None:
    print()
    print(
        f"{'nodes':>5} {'workers':>7} {'rng':<12} {'ours':>6} {'model':>6} "
        f"{'ours/model':>10}  workshop"
    )
    for r in rows:
        rate, ratio = r["hashes_per_s"], r["hashes_per_s"] / r["model"]
        print(
            f"{r['nodes']:>5} {r['workers']:>7} {r['rng']:<12} {rate:>6.1f} "
            f"{r['model']:>6.1f} {ratio:>10.2f}  {r['workshop']}"
        )
    print("(hashes/s; model = min(workers / 0.3 s, rng tasks x 10/s))")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3])
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    args = parser.parse_args(argv)
    why = namespaces_unavailable()
    if why:
        print(f"bench/lab.py: no lab on this machine ({why}); nothing measured")
        return 0
    started = time.monotonic()
    rows: list[dict] = []
    for index, nodes in enumerate(args.nodes):
        if not 2 <= nodes <= 5:
            parser.error("--nodes takes 2..5")
        rows += bench_lab(
            nodes, first=index == 0, warmup=args.warmup, window=args.window
        )
    print_table(rows)
    print(f"total {time.monotonic() - started:.0f}s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"lab-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
