"""Issue 15 on a real stack, as a CI job uses it: an operator's token, the
README's waiting call against the stack's webui (gunicorn + gevent, its
PostgreSQL, its controller), and a webhook receiver on the webui container's
loopback whose deliveries are verified here with `standardwebhooks`.

`bugged` cannot start: with failure_action rollback the engine rolls back and
the call answers 422 with the reason; `1.1` completes and answers 200. A retry
with the same Idempotency-Key answers the same rollout. A receiver stopped for
a minute mid-rollout still gets every event once (the stack retries after 1,
2, then every 5 s: WEBHOOK_BACKOFF).
"""

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack, docker

pytestmark = pytest.mark.swarm

RECEIVER_PORT = 8099
RECEIVER = f"""
import json, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open("/tmp/received.jsonl", "a") as out:
            out.write(json.dumps({{"headers": dict(self.headers),
                                   "body": body.decode()}}) + "\\n")
        self.send_response(200); self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args): pass
import os
open("/tmp/receiver.pid", "w").write(str(os.getpid()))
http.server.HTTPServer(("127.0.0.1", {RECEIVER_PORT}), H).serve_forever()
"""
SETUP = f"""
from django.contrib.auth.models import Permission, User
from webhooks.models import Subscription
user = User.objects.create_user("ci", is_staff=True)
user.user_permissions.add(Permission.objects.get(codename="apply_rollout"))
print(Subscription.objects.create(
    name="receiver", url="http://127.0.0.1:{RECEIVER_PORT}/hook").secret)
"""


def webui_container(stack: Stack) -> str:
    return wait_until(
        lambda: docker(
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.swarm.service.name={stack.service('webui')}",
        ).split()[:1],
        timeout=60,
        message="a running webui container",
    )[0]


def webui_exec(stack: Stack, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", "exec", "-i", webui_container(stack), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def stack(docker_client) -> Iterator[Stack]:
    with deployed_stack(
        {"WORKER_REPLICAS": "2", "WEBHOOK_BACKOFF": "1,2,5"}
    ) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def setup(stack) -> dict[str, str]:
    def migrated() -> bool:
        done = subprocess.run(
            [
                "docker",
                "exec",
                webui_container(stack),
                "python",
                "manage.py",
                "migrate",
                "--check",
            ],
            capture_output=True,
            timeout=60,
        )
        last[:] = [done.stderr.decode()[-600:]]
        return done.returncode == 0

    last: list[str] = []
    try:
        wait_until(migrated, timeout=300, interval=3, message="the stack's migrations")
    except AssertionError as error:
        raise AssertionError(f"{error}; last: {last}") from None
    secret = webui_exec(stack, "python", "manage.py", "shell", stdin=SETUP).split()[-1]
    token = webui_exec(stack, "python", "manage.py", "token", "create", "ci")
    webui_exec(stack, "sh", "-c", "cat > /tmp/receiver.py", stdin=RECEIVER)
    start_receiver(stack)
    return {"token": token.splitlines()[-1], "secret": secret}


def start_receiver(stack: Stack) -> None:
    docker("exec", "-d", webui_container(stack), "python", "/tmp/receiver.py")
    wait_until(
        lambda: "up"
        in webui_exec(
            stack,
            "python",
            "-c",
            "import socket; socket.create_connection(('127.0.0.1', "
            f"{RECEIVER_PORT}), 1); print('up')",
        ),
        timeout=30,
        message="the receiver listening",
    )


def stop_receiver(stack: Stack) -> None:
    webui_exec(stack, "sh", "-c", "kill $(cat /tmp/receiver.pid)")


def release(
    stack: Stack, token: str, body: dict, key: str, wait: int = 240
) -> requests.Response:
    """What the README's curl does."""
    return requests.post(
        stack.url("webui", f"/api/rollouts/services/worker/rollouts/?wait={wait}"),
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        timeout=300,
    )


def received(stack: Stack) -> list[dict]:
    text = webui_exec(stack, "sh", "-c", "cat /tmp/received.jsonl 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line]


def rollout_events(stack: Stack, rollout: int) -> list[tuple[str, str]]:
    """(webhook-id, type) of each delivery received about `rollout`."""
    found = []
    for delivery in received(stack):
        body = json.loads(delivery["body"])
        if (body["data"].get("rollout") or {}).get("id") == rollout:
            found.append((delivery["headers"]["webhook-id"], body["type"]))
    return found


def test_a_bugged_release_fails_the_job_with_the_rolled_back_reason(stack, setup):
    wait_until(
        lambda: requests.get(
            stack.url("webui", "/api/rollouts/services/worker/"),
            headers={"Authorization": f"Bearer {setup['token']}"},
            timeout=10,
        ).status_code
        == 200,
        timeout=90,
        message="the controller to import the stack's services",
    )
    started = time.monotonic()
    response = release(
        stack,
        setup["token"],
        {
            "tag": "bugged",
            "update_failure_action": "rollback",
            "update_max_failure_ratio": 0.2,
            "update_parallelism": 2,
            "update_delay": "5s",
            "update_monitor": "20s",
            "change_cause": "CI: bugged",
        },
        key="ci-bugged",
    )
    print(f"bugged: {response.status_code} after {time.monotonic() - started:.1f}s")

    assert response.status_code == 422, response.text
    assert response.json()["state"] == "rolled_back", response.json()["reason"]
    assert "non-zero exit" in response.json()["reason"]


def test_a_good_release_passes_and_a_retry_answers_the_same_rollout(stack, setup):
    body = {"tag": "1.1", "change_cause": "CI: 1.1"}
    started = time.monotonic()
    response = release(stack, setup["token"], body, key="ci-1.1")
    print(f"1.1: {response.status_code} after {time.monotonic() - started:.1f}s")

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "completed"
    retry = release(stack, setup["token"], body, key="ci-1.1")
    assert retry.status_code == 200
    assert retry.json()["id"] == response.json()["id"]
    assert retry.headers["Idempotent-Replayed"] == "true"


def test_the_receiver_got_every_event_once_and_signed(stack, setup):
    wanted = [
        "rollout.queued",
        "rollout.started",
        "rollout.rolled_back",
        "rollout.queued",
        "rollout.started",
        "rollout.completed",
    ]

    def types() -> list[str] | None:
        bodies = [json.loads(d["body"]) for d in received(stack)]
        got = [b["type"] for b in bodies if b["type"].startswith("rollout.")]
        return got if len(got) >= len(wanted) else None

    assert wait_until(types, timeout=60, message="six deliveries") == wanted
    verifier = Webhook(setup["secret"])
    deliveries = received(stack)
    for delivery in deliveries:
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        verifier.verify(delivery["body"], headers)  # raises when forged
    ids = [d["headers"]["webhook-id"] for d in deliveries]
    assert len(set(ids)) == len(ids)


def test_a_receiver_stopped_for_a_minute_mid_rollout_gets_every_event_once(
    stack, setup
):
    response = release(
        stack,
        setup["token"],
        {"tag": "1.0", "update_delay": "2s", "change_cause": "CI: back to 1.0"},
        key="ci-1.0",
        wait=0,
    ).json()
    rollout = response["id"]
    wait_until(
        lambda: rollout_events(stack, rollout),
        timeout=60,
        message="the rollout's first event, receiver up",
    )
    stop_receiver(stack)
    stopped = time.monotonic()
    wait_until(
        lambda: requests.get(
            response["links"]["api"],
            headers={"Authorization": f"Bearer {setup['token']}"},
            timeout=10,
        ).json()["state"]
        == "completed",
        timeout=240,
        interval=2,
        message="the rollout to complete, receiver down",
    )
    wait_until(
        lambda: time.monotonic() - stopped >= 60,
        timeout=90,
        interval=1,
        message="a minute with the receiver down",
    )
    start_receiver(stack)

    wanted = ["rollout.queued", "rollout.started", "rollout.completed"]

    def all_three() -> list[tuple[str, str]] | None:
        got = rollout_events(stack, rollout)
        return got if {t for _, t in got} >= set(wanted) else None

    wait_until(all_three, timeout=60, message="every event after the restart")
    got = rollout_events(stack, rollout)
    assert sorted(t for _, t in got) == sorted(wanted), got
    repeated = [i for i, n in Counter(i for i, _ in got).items() if n > 1]
    assert not repeated, f"delivered twice: {repeated}"
    verifier = Webhook(setup["secret"])
    for delivery in received(stack):
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        verifier.verify(delivery["body"], headers)
