"""The rules every write path shares; nothing that breaks one reaches the swarm."""

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from rollouts.models import Service
from rollouts.spec.validation import validate_desired

pytestmark = pytest.mark.django_db


def errors(service: Service, **desired) -> dict:
    with pytest.raises(ValidationError) as raised:
        validate_desired(service=service, desired=desired)
    return raised.value.message_dict


def test_the_workshop_policies_are_valid(worker):
    validate_desired(
        service=worker,
        desired={
            "tag": "bugged",
            "replicas": 10,
            "update_parallelism": 2,
            "update_delay": 5.0,
            "update_failure_action": "rollback",
            "update_max_failure_ratio": 0.2,
            "update_monitor": 20.0,
        },
    )
    validate_desired(service=worker, desired={"mode": "global", "replicas": None})
    validate_desired(service=worker, desired={"update_parallelism": 0})  # all at once


@pytest.mark.parametrize(
    "desired, field, message",
    [
        ({"image": "Docker Coins"}, "image", "not a valid image reference"),
        ({"image": "dockercoins:1.0"}, "image", "not an image repository"),
        ({"tag": "1.0 beta"}, "tag", "not a valid tag"),
        ({"image": "d" * 256}, "image", "at most 255 characters"),
        ({"tag": "9.9"}, "tag", "not on the swarm's engine (known tags: 1.0, 1.1"),
        ({"image": "nginx", "tag": "1"}, "tag", "no tag of it is known"),
        ({"update_max_failure_ratio": 1.5}, "update_max_failure_ratio", "between 0"),
        ({"rollback_max_failure_ratio": -0.1}, "rollback_max_failure_ratio", "0 and 1"),
        ({"update_delay": -5.0}, "update_delay", "at least 0s"),
        ({"update_delay": 86401.0}, "update_delay", "at most 24h"),
        ({"rollback_monitor": -1.0}, "rollback_monitor", "at least 0s"),
        ({"progress_deadline": 0.0}, "progress_deadline", "at least 1s"),
        (
            {"update_failure_action": "rollback", "update_delay": 30.0},
            "update_monitor",
            "monitor (5s) must be at least the delay (30s)",
        ),
        ({"mode": "global"}, "replicas", "leave empty"),
        ({"replicas": None}, "replicas", "needs a number of replicas"),
        ({"replicas": 5000}, "replicas", "from 0 to 1000"),
        ({"replicas": -1}, "replicas", "from 0 to 1000"),
        ({"update_parallelism": -1}, "update_parallelism", "0 (all at once)"),
        ({"mode": "everywhere"}, "mode", "not one of: replicated, global"),
        ({"update_failure_action": "explode"}, "update_failure_action", "not one of"),
        ({"rollback_failure_action": "rollback"}, "rollback_failure_action", "not one"),
        ({"update_order": "random"}, "update_order", "not one of"),
        ({"deadline_action": "panic"}, "deadline_action", "not one of"),
    ],
)
def test_bad_input_is_refused_field_by_field(worker, desired, field, message):
    assert message in " ".join(errors(worker, **desired)[field])


def test_a_service_that_no_longer_exists_is_refused(worker):
    worker.missing = True
    assert "no longer exists" in errors(worker, tag="1.1")[NON_FIELD_ERRORS][0]


def test_every_error_is_reported_at_once(worker):
    found = errors(worker, tag="9.9", update_max_failure_ratio=2.0, replicas=None)
    assert set(found) == {"tag", "update_max_failure_ratio", "replicas"}


@pytest.mark.parametrize(
    "field", ["update_delay", "update_monitor", "progress_deadline", "rollback_delay"]
)
def test_nan_and_infinite_durations_are_refused(worker, field):
    # NaN fails both range comparisons, so it must be refused before them.
    for value in (float("nan"), float("inf")):
        assert field in errors(worker, **{field: value})


def test_a_nan_ratio_is_refused(worker):
    found = errors(worker, update_max_failure_ratio=float("nan"))
    assert "between 0 and 1" in found["update_max_failure_ratio"][0]
