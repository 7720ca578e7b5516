"""Redis restarted while the workers mine: /json and the workers recover by
themselves, and the hash count survives the restart (Redis' append-only file,
fsynced before each reply: every flush a worker was told is saved, is)."""

import time

from deploy.polling import wait_until
from deploy.stacks import docker
from tests.faults.conftest import Operator, recovered


def test_a_redis_restart_loses_no_hash_and_mining_goes_on(healthy: Operator):
    op = healthy
    stack = op.stack
    wait_until(
        lambda: stack.json()["hashes"] > 0, timeout=60, message="hashes to count"
    )
    before = stack.json()

    restarted = time.monotonic()
    docker("service", "update", "--force", "--detach", stack.service("redis"))
    # /json says 503 while Redis is away (never a 500), then answers again.
    wait_until(
        lambda: json_status(op) == 503, timeout=60, interval=0.2, message="a 503"
    )
    after = wait_until(
        lambda: op.answer("/json", 200),
        timeout=120,
        interval=0.5,
        message="/json to answer again",
    )
    recovered("Redis restart, /json answers", time.monotonic() - restarted)

    print(f"\nRedis restart: before {before}, first answer after {after}")
    # Nothing was lost: the counter and the wallet carry on from where they were.
    assert after["hashes"] >= before["hashes"], (before, after)
    assert after["coins"] >= before["coins"], (before, after)
    # The workers mine again: the count grows, all three are back.
    wait_until(
        lambda: stack.json()["hashes"] > after["hashes"],
        timeout=60,
        message="the count to grow again",
    )
    wait_until(lambda: active_workers(op) == 3, timeout=60, message="3 active workers")
    recovered("Redis restart, the workers mine again", time.monotonic() - restarted)


def json_status(op: Operator) -> int:
    status, _ = op.api("/json")
    return status


def active_workers(op: Operator) -> int:
    status, body = op.api("/api/workers/")
    return body["active"] if status == 200 else -1
