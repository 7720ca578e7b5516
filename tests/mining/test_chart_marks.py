"""The chart's rollout marks (/api/marks/, from the rollouts' records) and its
rate by worker version (/api/versions/, from a stand-in Prometheus)."""

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from mining import prometheus
from rollouts.models import Revision, Rollout, RolloutEvent, RolloutState
from tests.rollouts.admin_support import make_service


def _at(seconds_ago: float) -> datetime:
    return timezone.now() - timedelta(seconds=seconds_ago)


def rolled(
    service_name: str = "worker",
    *,
    tag: str = "slow",
    state: str = RolloutState.ROLLED_BACK,
    started: float = 120,
    promoted: float | None = None,
    finished: float | None = 60,
    stack: str = "dockercoins",
) -> Rollout:
    """A rollout that started `started` s ago (promoted, finished as given)."""
    service = make_service(service_name, stack=stack, name=f"{stack}_{service_name}")
    revision = Revision.objects.create(
        service=service, number=2, spec={"tag": tag}, change_cause="test"
    )
    rollout = Rollout.objects.create(
        service=service,
        revision=revision,
        kind="apply",
        state=state,
        started_at=_at(started),
        finished_at=_at(finished) if finished is not None else None,
        baseline_version="1.0",
    )
    if promoted is not None:
        event = RolloutEvent.objects.create(
            rollout=rollout, kind="state", message="promoted at 10:00:00: passed"
        )
        RolloutEvent.objects.filter(pk=event.pk).update(at=_at(promoted))
    return rollout


@pytest.mark.django_db
def test_it_marks_start_promotion_end_and_outcome_of_each_rollout(client):
    slow = rolled(tag="slow", started=200, finished=150)
    good = rolled("hasher", tag="1.1", state="completed", started=100, promoted=70)
    Rollout.objects.filter(pk=good.pk).update(finished_at=_at(20))

    body = client.get("/api/marks/").json()

    assert time.time() - 310 < body["since"] < time.time() - 300
    first, second = body["rollouts"]
    assert first["id"] == slow.pk
    assert first["service"] == "worker"
    assert (first["version"], first["baseline_version"]) == ("slow", "1.0")
    assert first["state"] == "rolled_back"
    assert first["promoted"] is None
    assert first["finished"] - first["started"] == pytest.approx(50, abs=1)
    assert second["service"] == "hasher" and second["state"] == "completed"
    assert second["promoted"] - second["started"] == pytest.approx(30, abs=1)


@pytest.mark.django_db
def test_a_running_rollout_has_no_end_yet(client):
    rolled(state=RolloutState.WATCHING, started=30, finished=None)

    (rollout,) = client.get("/api/marks/").json()["rollouts"]

    assert rollout["state"] == "watching"
    assert rollout["finished"] is None


@pytest.mark.django_db
def test_it_leaves_out_what_the_chart_cannot_show(client):
    rolled(started=900, finished=600)  # ended before the five minutes
    rolled("webui", started=60, finished=30)  # no hash-rate role
    rolled("rng", started=60, finished=30, stack="other")  # another stack
    queued = rolled("hasher", state=RolloutState.QUEUED, finished=None)
    Rollout.objects.filter(pk=queued.pk).update(started_at=None)  # never started

    assert client.get("/api/marks/").json()["rollouts"] == []


@pytest.mark.django_db
def test_the_marks_are_in_the_api_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/marks/", "/api/versions/"} <= set(schema["paths"])


# --- rate by version, from a stand-in Prometheus -----------------------------


class _Prometheus(BaseHTTPRequestHandler):
    matrix: list[dict] = []
    vector: list[dict] = []
    status = 200
    asked: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).asked.append({"path": url.path, **params})
        if url.path.endswith("query_range"):
            data = {"resultType": "matrix", "result": self.matrix}
        else:
            data = {"resultType": "vector", "result": self.vector}
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(json.dumps({"status": "success", "data": data}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in(settings) -> Iterator[type[_Prometheus]]:
    server = HTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{server.server_address[1]}"
    _Prometheus.asked, _Prometheus.status = [], 200
    yield _Prometheus
    server.shutdown()
    server.server_close()


def test_it_gives_the_rate_of_each_worker_version_on_the_charts_seconds(
    client, stand_in
):
    now = datetime.now(UTC).timestamp()
    end = int(now) - 2
    start = end - 299
    stand_in.matrix = [
        {"metric": {"version": "slow"}, "values": [[start + 295, "0.5"]]},
        {
            "metric": {"version": "1.0"},
            "values": [[start, "3.3"], [start + 5, "NaN"], [start + 10, "3.25"]],
        },
    ]
    stand_in.vector = [
        {"metric": {"version": "1.0"}, "value": [now, "3"]},
        {"metric": {"version": "slow"}, "value": [now, "1"]},
    ]

    body = client.get("/api/versions/").json()

    assert body["step"] == prometheus.STEP_SECONDS
    assert abs(body["start"] - start) <= 1
    old, new = body["versions"]
    assert (old["version"], old["tasks"], new["version"], new["tasks"]) == (
        "1.0",
        3,
        "slow",
        1,
    )
    assert len(old["rates"]) == 60
    shift = body["start"] - start  # a second may pass between the two clocks
    if shift == 0:
        assert old["rates"][:3] == [3.3, None, 3.25]  # NaN is no sample
        assert new["rates"][59] == 0.5
    range_query = stand_in.asked[0]
    assert "sum by (version)" in range_query["query"]
    assert range_query["step"] == "5"


def test_prometheus_down_is_a_503_with_a_reason(client, settings):
    settings.PROMETHEUS_URL = "http://127.0.0.1:9"  # discard port: refused

    response = client.get("/api/versions/")

    assert response.status_code == 503
    assert "Prometheus at http://127.0.0.1:9 unreachable" in response.json()["detail"]


def test_a_prometheus_error_is_a_503_too(client, stand_in):
    stand_in.status = 500

    response = client.get("/api/versions/")

    assert response.status_code == 503
    assert response.json()["detail"].endswith("answered 500")
