"""API tokens: shown once, stored hashed, expire, revoked, scoped, and carry
their user's permissions (issue 15, section 1)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from access.models import ApiToken
from access.tokens import token_create, token_revoke
from tests.rollouts.admin_support import known_images, make_service, make_staff

pytestmark = pytest.mark.django_db

SERVICES = "/api/rollouts/services/"
SCALE = "/api/rollouts/services/{}/scale/"


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def scale(client: Client, secret: str, service: str = "worker", replicas: int = 3):
    return client.post(
        SCALE.format(service),
        {"replicas": replicas},
        content_type="application/json",
        **bearer(secret),
    )


@pytest.fixture
def worker():
    known_images("1.0", "1.1", "bugged")
    return make_service()


@pytest.fixture
def operator(django_user_model):
    return make_staff(django_user_model, "ci", can_apply=True)


def test_it_stores_only_a_digest_of_the_token(operator):
    token, secret = token_create(user=operator)
    assert secret.startswith("dcc_")
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret not in (stored.digest, stored.token_key)
    assert secret.startswith(stored.token_key)


def test_a_token_reads_and_writes_as_its_user(client, worker, operator):
    _, secret = token_create(user=operator)

    assert client.get(SERVICES, **bearer(secret)).status_code == 200
    response = scale(client, secret)

    assert response.status_code == 202, response.json()
    assert response.json()["requested_by"] == "ci"
    assert response.json()["change_cause"] == "scale to 3"


def test_a_token_of_a_user_without_the_apply_permission_only_reads(
    client, worker, django_user_model
):
    viewer = make_staff(django_user_model, "viewer", can_apply=False)
    _, secret = token_create(user=viewer)

    assert client.get(SERVICES, **bearer(secret)).status_code == 200
    response = scale(client, secret)

    assert response.status_code == 403
    assert "rollouts.apply_rollout" in response.json()["detail"]
    assert not worker.rollouts.exists()


def test_an_expired_token_authenticates_nobody(client, worker, operator):
    token, secret = token_create(user=operator, expires_in=timedelta(hours=1))
    ApiToken.objects.filter(pk=token.pk).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )

    response = scale(client, secret)

    assert response.status_code == 403
    assert response.json()["detail"] == "Invalid token."
    assert not worker.rollouts.exists()


def test_a_revoked_token_authenticates_nobody(client, worker, operator):
    token, secret = token_create(user=operator)
    assert client.get(SERVICES, **bearer(secret)).status_code == 200

    token_revoke(token=token)

    assert client.get(SERVICES, **bearer(secret)).status_code == 403


def test_a_token_of_a_deactivated_user_authenticates_nobody(client, worker, operator):
    _, secret = token_create(user=operator)
    operator.is_active = False
    operator.save()

    assert client.get(SERVICES, **bearer(secret)).status_code == 403


def test_a_token_scoped_to_services_changes_only_those(client, worker, operator):
    rng = make_service("rng")
    _, secret = token_create(user=operator, scope_services=[worker])

    assert scale(client, secret, "worker").status_code == 202
    refused = scale(client, secret, "rng")

    assert refused.status_code == 403
    assert "may not change dockercoins_rng" in refused.json()["detail"]
    assert not rng.rollouts.exists()


def test_a_token_scoped_to_a_stack_changes_only_its_services(client, worker, operator):
    other = make_service("web", name="shop_web", stack="shop")
    _, secret = token_create(user=operator, scope_stack="dockercoins")

    assert scale(client, secret, "worker").status_code == 202
    assert scale(client, secret, "shop_web").status_code == 403
    assert not other.rollouts.exists()


def test_wrong_tokens_lock_the_address_out_like_wrong_passwords(
    client, worker, operator, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    _, secret = token_create(user=operator)
    wrong = "dcc_" + "0" * 64
    codes = [client.get(SERVICES, **bearer(wrong)).status_code for _ in range(3)]

    assert codes == [403, 403, 429]
    locked = client.get(SERVICES, **bearer(secret))
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Too many failed logins")
    call_command("axes_reset")
    assert client.get(SERVICES, **bearer(secret)).status_code == 200


def test_a_session_write_without_the_csrf_token_is_refused(worker, operator):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)

    response = browser.post(
        SCALE.format("worker"), {"replicas": 3}, content_type="application/json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not worker.rollouts.exists()


def test_an_anonymous_write_is_refused(client, worker):
    response = client.post(
        SCALE.format("worker"), {"replicas": 3}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not worker.rollouts.exists()
