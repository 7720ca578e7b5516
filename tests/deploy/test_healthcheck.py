"""`deploy/entrypoint.sh healthcheck`, the image's HEALTHCHECK, without Docker:
which role it checks and what makes each role unhealthy. It runs here as the
engine runs it, a bash script, with its files in a temporary directory."""

import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deploy.stacks import REPO, free_ports

ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"


class Container:
    """The files the role and the check share, and a way to run the check."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.env = {"PATH": os.environ["PATH"], "DOCKERCOINS_RUN_DIR": str(run_dir)}

    def role(self, name: str) -> None:
        (self.run_dir / "dockercoins-role").write_text(f"{name}\n")

    def heartbeat(self, age: float) -> None:
        path = self.run_dir / "dockercoins-alive"
        path.touch()
        then = time.time() - age
        os.utime(path, (then, then))

    def check(self, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(ENTRYPOINT), "healthcheck"],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=30,
        )


@pytest.fixture
def container(tmp_path) -> Container:
    return Container(tmp_path)


@pytest.fixture
def http_server():
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status["code"])
            self.end_headers()
            self.wfile.write(b"RNG running on test")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # The check reads the status line and hangs up: no traceback for that.
    server.handle_error = lambda request, address: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield str(server.server_port), status
    server.shutdown()
    server.server_close()


def test_a_container_without_a_role_has_nothing_to_check(container):
    assert container.check().returncode == 0


def test_worker_is_healthy_while_its_heartbeat_is_fresh(container):
    container.role("worker")
    container.heartbeat(age=2)

    assert container.check().returncode == 0


def test_worker_is_unhealthy_when_its_heartbeat_is_stale(container):
    container.role("worker")
    container.heartbeat(age=120)

    done = container.check()

    assert done.returncode == 1
    assert "120s old (limit 30s)" in done.stdout


def test_controller_is_unhealthy_before_its_first_heartbeat(container):
    container.role("controller")

    done = container.check()

    assert done.returncode == 1
    assert "no heartbeat yet" in done.stdout


def test_http_role_is_healthy_when_get_root_answers(container, http_server):
    port, _ = http_server
    container.role("rng")

    assert container.check(HEALTHCHECK_PORT=port).returncode == 0


def test_http_role_is_unhealthy_on_an_error_status(container, http_server):
    port, status = http_server
    status["code"] = 500
    container.role("webui")

    done = container.check(HEALTHCHECK_PORT=port)

    assert done.returncode == 1
    assert "GET / answered 500" in done.stdout


def test_http_role_is_unhealthy_when_nothing_listens(container):
    (port,) = free_ports(1)
    container.role("hasher")

    done = container.check(HEALTHCHECK_PORT=str(port))

    assert done.returncode == 1
    assert f"nothing listens on port {port}" in done.stdout


def test_http_role_is_unhealthy_when_get_root_does_not_answer_in_time(container):
    hung = socket.create_server(("127.0.0.1", 0))
    container.role("rng")
    try:
        done = container.check(
            HEALTHCHECK_PORT=str(hung.getsockname()[1]), HEALTHCHECK_TIMEOUT="0.3"
        )
    finally:
        hung.close()

    assert done.returncode == 1
    assert "no answer to GET / within 0.3s" in done.stdout
