"""deploy/healthcheck.py, the image's HEALTHCHECK, without Docker: which role
it checks and what makes each role unhealthy."""

import importlib.util
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.stacks import REPO


@pytest.fixture
def healthcheck(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "healthcheck", REPO / "deploy" / "healthcheck.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROLE_MARKER", tmp_path / "role")
    monkeypatch.setattr(
        module,
        "HEARTBEATS",
        {
            "worker": tmp_path / "worker-alive",
            "controller": tmp_path / "controller-alive",
        },
    )
    monkeypatch.setattr(module.sys, "argv", ["healthcheck.py"])
    return module


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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, status
    server.shutdown()
    server.server_close()


def touch(path: Path, age: float) -> None:
    path.touch()
    then = time.time() - age
    os.utime(path, (then, then))


def test_a_container_without_a_role_has_nothing_to_check(healthcheck):
    assert healthcheck.main() == 0


def test_worker_is_healthy_while_its_heartbeat_is_fresh(healthcheck):
    healthcheck.ROLE_MARKER.write_text("worker\n")
    touch(healthcheck.HEARTBEATS["worker"], age=2)
    assert healthcheck.main() == 0


def test_worker_is_unhealthy_when_its_heartbeat_is_stale(healthcheck, capsys):
    healthcheck.ROLE_MARKER.write_text("worker\n")
    touch(healthcheck.HEARTBEATS["worker"], age=120)
    assert healthcheck.main() == 1
    assert "120s old" in capsys.readouterr().out


def test_controller_is_unhealthy_before_its_first_heartbeat(healthcheck, capsys):
    healthcheck.ROLE_MARKER.write_text("controller\n")
    assert healthcheck.main() == 1
    assert "no heartbeat yet" in capsys.readouterr().out


def test_the_role_on_the_command_line_wins(healthcheck, monkeypatch):
    healthcheck.ROLE_MARKER.write_text("worker\n")
    monkeypatch.setattr(healthcheck.sys, "argv", ["healthcheck.py", "controller"])
    touch(healthcheck.HEARTBEATS["worker"], age=1)
    assert healthcheck.main() == 1


def test_http_role_is_healthy_when_get_root_answers(
    healthcheck, http_server, monkeypatch
):
    server, _ = http_server
    monkeypatch.setattr(
        healthcheck, "HTTP_URL", f"http://127.0.0.1:{server.server_port}/"
    )
    healthcheck.ROLE_MARKER.write_text("rng\n")
    assert healthcheck.main() == 0


def test_http_role_is_unhealthy_on_an_error_status(
    healthcheck, http_server, monkeypatch, capsys
):
    server, status = http_server
    status["code"] = 500
    monkeypatch.setattr(
        healthcheck, "HTTP_URL", f"http://127.0.0.1:{server.server_port}/"
    )
    healthcheck.ROLE_MARKER.write_text("webui\n")
    assert healthcheck.main() == 1
    assert "500" in capsys.readouterr().out


def test_http_role_is_unhealthy_when_nothing_listens(healthcheck, monkeypatch):
    from tests.stacks import free_ports

    (port,) = free_ports(1)
    monkeypatch.setattr(healthcheck, "HTTP_URL", f"http://127.0.0.1:{port}/")
    healthcheck.ROLE_MARKER.write_text("hasher\n")
    assert healthcheck.main() == 1
