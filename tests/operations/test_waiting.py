"""`?wait=N`: the answer comes when the rollout ended, and its status code says
how (issue 15, §1): 200 completed, 409 superseded or aborted, 422 failed,
rolled back or paused, 202 still running when the wait is over."""

import pytest

from operations import waiting
from rollouts.models import Rollout, RolloutState
from rollouts.records.history import finish

pytestmark = pytest.mark.django_db

CHANGE = {"tag": "1.1", "change_cause": "CI build 42"}


class Controller:
    """Stands in for the controller: after `after` polls it ends the rollout
    with `state`, through rollouts.history.finish as the real one does."""

    def __init__(self, state: str | None, reason: str = "", after: int = 2) -> None:
        self.state, self.reason, self.after = state, reason, after
        self.slept: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.state and len(self.slept) == self.after:
            rollout = Rollout.objects.get()
            finish(rollout, self.state, self.reason)

    def clock(self) -> float:
        return self.now


@pytest.fixture
def controller(monkeypatch):
    def install(state: str | None, reason: str = "") -> Controller:
        fake = Controller(state, reason)
        real = waiting.rollout_wait

        def wait(rollout, *, seconds):
            return real(rollout, seconds=seconds, sleep=fake.sleep, clock=fake.clock)

        monkeypatch.setattr("operations.views.rollout_wait", wait)
        return fake

    return install


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (RolloutState.COMPLETED, 200),
        (RolloutState.SUPERSEDED, 409),
        (RolloutState.ABORTED, 409),
        (RolloutState.FAILED, 422),
        (RolloutState.ROLLED_BACK, 422),
        (RolloutState.PAUSED, 422),
    ],
)
def test_it_answers_the_end_as_a_status_code(pipeline, worker, controller, state, code):
    fake = controller(state, reason=f"it ended {state}")

    response = pipeline.post("worker/rollouts/?wait=600", CHANGE)

    assert response.status_code == code
    assert response.json()["state"] == state
    assert response.json()["reason"] == f"it ended {state}"
    assert response.json()["revision"] == 1
    assert fake.slept == [waiting.POLL, waiting.POLL]


def test_a_rollout_still_running_at_the_waits_end_is_a_202(
    pipeline, worker, controller
):
    fake = controller(None)

    response = pipeline.post("worker/scale/?wait=3", {"replicas": 3})

    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    assert sum(fake.slept) == 3


def test_without_wait_it_answers_at_once(pipeline, worker, controller):
    fake = controller(RolloutState.COMPLETED)
    assert pipeline.post("worker/rollouts/", CHANGE).status_code == 202
    assert fake.slept == []


@pytest.mark.parametrize("wait", ["901", "-1", "soon", "٣", "1.5"])
def test_a_wait_out_of_bounds_is_a_400_and_queues_nothing(pipeline, worker, wait):
    response = pipeline.post(f"worker/rollouts/?wait={wait}", CHANGE)
    assert response.status_code == 400
    assert "wait" in response.json()["field_errors"]
    assert not Rollout.objects.exists()
