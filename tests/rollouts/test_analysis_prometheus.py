"""rollouts.analysis.prometheus against a stand-in Prometheus on loopback:
figures by version from its answers, and every failure to answer an error
(the caller's Error measurement), never figures."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rollouts.analysis.prometheus import PrometheusError, figures
from rollouts.analysis.templates import TEMPLATES
from tests.conftest import free_port

HASH_RATE = TEMPLATES["worker-hash-rate"]


def _vector(rows: list[tuple[str, str]]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {"version": v, "instance": f"10.0.0.{i}:9100"},
                    "value": [0, x],
                }
                for i, (v, x) in enumerate(rows)
            ],
        },
    }


class _Answers(BaseHTTPRequestHandler):
    answers: dict[str, object] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        kind = "samples" if "count_over_time" in self.path else "values"
        body = self.answers[kind]
        status = 200 if not isinstance(body, int) else body
        payload = json.dumps(body).encode() if status == 200 else b"down"
        self.send_response(status)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_it_averages_each_versions_tasks_and_keeps_their_fewest_samples(prometheus):
    _Answers.answers = {
        "values": _vector(
            [("1.0", "3.2"), ("1.0", "3.4"), ("slow", "0.33"), ("1.0", "NaN")]
        ),
        "samples": _vector([("1.0", "6"), ("1.0", "5"), ("slow", "2")]),
    }
    found = figures(HASH_RATE, 30, base_url=prometheus)
    assert found["1.0"].value == pytest.approx(3.3)
    assert (found["1.0"].tasks, found["1.0"].samples) == (2, 5)
    assert (found["slow"].value, found["slow"].samples) == (0.33, 2)


def test_it_raises_when_prometheus_answers_an_error(prometheus):
    _Answers.answers = {"values": 503, "samples": 503}
    with pytest.raises(PrometheusError, match="answered 503"):
        figures(HASH_RATE, 30, base_url=prometheus)


def test_it_raises_when_prometheus_is_down():
    with pytest.raises(PrometheusError, match="unreachable"):
        figures(HASH_RATE, 30, base_url=f"http://127.0.0.1:{free_port()}")
