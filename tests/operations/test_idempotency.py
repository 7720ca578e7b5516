"""`Idempotency-Key`: a retried request never queues a second rollout."""

import pytest

from access.tokens import token_create
from operations.models import IdempotencyKey
from rollouts.models import Rollout, RolloutState
from tests.rollouts.admin_support import make_staff

pytestmark = pytest.mark.django_db

CHANGE = {"tag": "1.1", "change_cause": "CI build 42"}
KEY = {"HTTP_IDEMPOTENCY_KEY": "build-42"}


def test_a_retry_with_the_same_key_answers_the_first_rollout(pipeline, worker):
    first = pipeline.post("worker/rollouts/", CHANGE, **KEY)
    retry = pipeline.post("worker/rollouts/", CHANGE, **KEY)

    assert first.status_code == retry.status_code == 202
    assert retry.json()["id"] == first.json()["id"]
    assert retry["Idempotent-Replayed"] == "true"
    assert Rollout.objects.count() == 1


def test_a_retry_after_the_end_answers_how_it_ended(pipeline, worker):
    first = pipeline.post("worker/rollouts/", CHANGE, **KEY)
    Rollout.objects.update(state=RolloutState.ROLLED_BACK, reason="bugged")

    retry = pipeline.post("worker/rollouts/", CHANGE, **KEY)

    assert retry.status_code == 422
    assert retry.json()["id"] == first.json()["id"]
    assert Rollout.objects.count() == 1


def test_the_same_key_for_another_request_is_refused(pipeline, worker):
    pipeline.post("worker/rollouts/", CHANGE, **KEY)
    Rollout.objects.update(state=RolloutState.COMPLETED)

    other = pipeline.post("worker/rollouts/", {**CHANGE, "tag": "1.0"}, **KEY)

    assert other.status_code == 400
    assert "was used for another request" in other.json()["detail"]
    assert Rollout.objects.count() == 1


def test_a_refused_request_leaves_its_key_free(pipeline, worker):
    bad = pipeline.post("worker/rollouts/", {**CHANGE, "tag": "nope"}, **KEY)
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()

    good = pipeline.post("worker/rollouts/", CHANGE, **KEY)
    assert good.status_code == 202


def test_keys_are_per_user(pipeline, worker, client, django_user_model):
    pipeline.post("worker/rollouts/", CHANGE, **KEY)
    Rollout.objects.update(state=RolloutState.COMPLETED)
    other = make_staff(django_user_model, "other", can_apply=True)
    _, secret = token_create(user=other)

    response = client.post(
        "/api/rollouts/services/worker/scale/",
        {"replicas": 3},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **KEY,
    )
    assert response.status_code == 202
    assert Rollout.objects.count() == 2


@pytest.mark.parametrize("key", ["", "with space", "é", "x" * 201])
def test_a_malformed_key_is_a_400(pipeline, worker, key):
    response = pipeline.post("worker/rollouts/", CHANGE, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert not Rollout.objects.exists()
