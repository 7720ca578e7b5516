"""The API against its own OpenAPI schema, fuzzed.

schemathesis reads /api/schema/ from a live server on loopback and sends
FUZZ_EXAMPLES generated requests per operation (default 25), as anonymous, as
staff (HTTP Basic) and as an operator (staff with rollouts.apply_rollout, by
API token), the write operations included. Any 5xx, an
undocumented status code or content type, or a body that does not match the
schema fails the test with the smallest request hypothesis found.
"""

import base64
import os

import pytest
import requests
import schemathesis
from django.contrib.auth.models import Permission
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from access.tokens import token_create
from mining import probe
from operations import waiting
from rollouts.models import Revision, RolloutEvent
from tests.rollouts.admin_support import active_rollout, make_service

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
PASSWORD = "fuzz-the-api-please"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]

# What hypothesis rarely draws but attackers do: digits
# that are not ASCII, numbers past int()'s 4300-digit limit or SQLite's 64
# bits, signs, spaces, exponents. Sent as every path and query parameter.
HOSTILE = ["²", "٣", "①", "9" * 5000, "9" * 20, "-1", "0", " 1", "1e3", "NaN"]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_and_local(settings, redis_url, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The stats endpoints would probe http://rng and http://hasher in the
    # background: there are none here.
    monkeypatch.setattr(probe, "refresh_in_background", lambda: None)
    # No controller runs here: a generated ?wait=900 would wait 900 s for
    # nothing. The wait itself is tested in tests/operations/test_waiting.py.
    real_wait = waiting.rollout_wait
    monkeypatch.setattr(
        "operations.views.rollout_wait",
        lambda rollout, *, seconds: real_wait(rollout, seconds=0),
    )


def _spec(image: str, replicas: int) -> dict:
    return {
        "Name": "dockercoins_worker",
        "TaskTemplate": {"ContainerSpec": {"Image": image}},
        "Mode": {"Replicated": {"Replicas": replicas}},
    }


@pytest.fixture
def rows() -> dict:
    """A service with a revision and a rollout (no user on either, as when
    the controller made them), so answers have every field to check: the
    service drifted from what we applied, the rollout remembers a failed task
    and its canary is held."""
    worker = make_service(
        stable_for=30.0,
        applied_spec=_spec("dockercoins:1.0", 4),
        live_spec=_spec("dockercoins:1.0", 10),
        live_updated_at=timezone.now(),
    )
    Revision.objects.create(
        service=worker, number=1, spec=worker.desired_spec(), change_cause="seed"
    )
    failed = {
        "task": "t" * 25,
        "slot": "dockercoins_worker.3",
        "image": "dockercoins:1.1",
        "state": "complete",
        "exit_code": 0,
        "error": "",
        "at": "2026-11-29T16:00:00.000000000Z",
    }
    # Held by its canary analysis: promote/ has something to promote.
    rollout = active_rollout(worker, failures=[failed], canary_state="holding")
    RolloutEvent.objects.create(rollout=rollout, kind="started", message="go")
    return {"service": "worker", "rollout": str(rollout.pk)}


def basic_auth(django_user_model, username: str, *, can_apply: bool) -> dict:
    user = django_user_model.objects.create_user(
        username=username, password=PASSWORD, is_staff=True
    )
    if can_apply:
        user.user_permissions.add(Permission.objects.get(codename="apply_rollout"))
    token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer_token(django_user_model, username: str) -> dict:
    """An operator's API token, as a pipeline sends it."""
    basic_auth(django_user_model, username, can_apply=True)
    _, secret = token_create(user=django_user_model.objects.get(username=username))
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("persona", ["anonymous", "staff", "operator"])
def test_the_api_answers_every_generated_request_as_its_schema_says(
    live_server, django_user_model, rows, persona
):
    headers = {}
    if persona == "staff":
        headers = basic_auth(django_user_model, persona, can_apply=False)
    elif persona == "operator":
        headers = bearer_token(django_user_model, persona)
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lost operations"
    session = requests.Session()

    def call(case) -> None:
        case.call_and_validate(
            base_url=live_server.url,
            session=session,
            headers=headers,
            checks=CHECKS,
            timeout=10,
        )

    for operation in operations:
        # Generated ids almost never name a row: one request that does.
        names = [p.name for p in operation.path_parameters]
        if names:
            call(operation.Case(path_parameters={n: rows[n] for n in names}))
        for value in HOSTILE:
            if names:
                call(operation.Case(path_parameters=dict.fromkeys(names, value)))
            for name in (p.name for p in operation.query):
                known = {n: rows[n] for n in names} or None
                call(operation.Case(path_parameters=known, query={name: value}))

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def survives(case) -> None:
            call(case)

        survives()
