#!/usr/bin/env python3
"""Benchmark: the CPU that metrics scraping costs the whole stack.

Deploys a stack of its own (dockercoins-bench-<random>, free ports) with
Prometheus and the workshop's defaults (1 worker), waits until Prometheus
scrapes every role, then alternates, --rounds times, two windows of
--seconds each:

1. Prometheus running (every target scraped every 5 s);
2. Prometheus scaled to 0 (nothing scrapes).

In each window it reads every container's CPU from its cgroup (cpuacct, in
ns) at the start and the end, so other work on the machine is not counted.
The difference between the windows is the scrape's cost: Prometheus' own
CPU plus what answering GET /metrics costs the targets. The stack is removed
at the end, also on failure.

    .venv/bin/python bench/scrape_cost.py [--seconds 60] [--rounds 2]
"""

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.polling import wait_until  # noqa: E402
from deploy.stacks import Stack, deployed_stack, docker  # noqa: E402

CGROUPS = (
    "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",  # cgroup v1, cgroupfs
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",  # v2, systemd
    "/sys/fs/cgroup/docker/{id}/cpu.stat",  # v2, cgroupfs
)
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cpu_ns(container: str) -> int:
    for pattern in CGROUPS:
        path = Path(pattern.format(id=container))
        if not path.exists():
            continue
        text = path.read_text()
        if path.name == "cpuacct.usage":
            return int(text)
        for line in text.splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) * 1000
    return 0


def containers(stack: Stack) -> dict[str, str]:
    """{container id: service short name} of the stack's running containers."""
    out = docker(
        "ps",
        "--no-trunc",
        "--filter",
        f"label=com.docker.stack.namespace={stack.name}",
        "--format",
        '{{.ID}} {{.Label "com.docker.swarm.service.name"}}',
    )
    found = {}
    for line in out.splitlines():
        cid, service = line.split()
        found[cid] = service.removeprefix(stack.name + "_")
    return found


def window(stack: Stack, seconds: float) -> dict[str, float]:
    """CPU seconds per second of each service over `seconds`."""
    before = {cid: cpu_ns(cid) for cid in containers(stack)}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    after = containers(stack)
    per_service: dict[str, float] = {}
    for cid, service in after.items():
        if cid in before:
            used = (cpu_ns(cid) - before[cid]) / 1e9 / elapsed
            per_service[service] = per_service.get(service, 0.0) + used
    return per_service


def targets_up(stack: Stack) -> int:
    url = stack.url("prometheus", "/api/v1/targets?state=active")
    with _opener.open(url, timeout=10) as response:
        targets = json.load(response)["data"]["activeTargets"]
    return sum(1 for t in targets if t["health"] == "up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    on: list[dict[str, float]] = []
    off: list[dict[str, float]] = []
    with deployed_stack(
        {"PROMETHEUS_REPLICAS": "1"}, prefix="dockercoins-bench-"
    ) as stack:
        prometheus = stack.service("prometheus")
        for _ in range(args.rounds):
            docker("service", "scale", "--detach", f"{prometheus}=1")
            stack.wait()
            wait_until(
                lambda: targets_up(stack) >= 6,
                timeout=120,
                interval=2,
                message="every role scraped",
            )
            time.sleep(5)  # past the first scrapes' start-up work
            on.append(window(stack, args.seconds))
            docker("service", "scale", "--detach", f"{prometheus}=0")
            stack.wait()
            time.sleep(5)
            off.append(window(stack, args.seconds))
    services = sorted({s for w in on + off for s in w})
    print(f"{'service':12} {'scraped ms/s':>13} {'unscraped ms/s':>15}")
    total_on = total_off = 0.0
    for service in services:
        a = sum(w.get(service, 0.0) for w in on) / len(on) * 1000
        b = sum(w.get(service, 0.0) for w in off) / len(off) * 1000
        total_on, total_off = total_on + a, total_off + b
        print(f"{service:12} {a:13.1f} {b:15.1f}")
    print(f"{'stack':12} {total_on:13.1f} {total_off:15.1f}")
    print(
        f"scrape cost: {total_on - total_off:.1f} ms of CPU per second "
        f"({(total_on - total_off) / 10:.2f} % of one core)"
    )


if __name__ == "__main__":
    main()
