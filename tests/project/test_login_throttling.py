"""Logins are throttled: the admin form and HTTP Basic.

LOGIN_FAILURE_LIMIT wrong passwords for one username from one address lock
that pair out, right password or not, until the lockout passes or an
administrator unlocks it.
"""

import base64

import pytest
from axes.models import AccessAttempt  # type: ignore[import-untyped]
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
API = "/api/rollouts/services/"
PASSWORD = "right-horse-battery"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AXES_FAILURE_LIMIT = 3


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(
        username="boss", password=PASSWORD
    )


def admin_login(client: Client, password: str):
    return client.post(LOGIN, {"username": "boss", "password": password})


def basic(client: Client, password: str):
    token = base64.b64encode(f"boss:{password}".encode()).decode()
    return client.get(API, HTTP_AUTHORIZATION=f"Basic {token}")


def test_the_admin_login_locks_out_after_the_failure_limit(client, admin):
    assert [admin_login(client, "wrong").status_code for _ in range(2)] == [200, 200]
    assert admin_login(client, "wrong").status_code == 429

    response = admin_login(client, PASSWORD)

    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_clears_the_count(client, admin):
    admin_login(client, "wrong")
    admin_login(client, "wrong")
    assert admin_login(client, PASSWORD).status_code == 302
    client.logout()

    assert admin_login(client, "wrong").status_code == 200


def test_basic_auth_on_the_api_locks_out_after_the_failure_limit(client, admin):
    # 403, not 401: SessionAuthentication comes first and sends no challenge.
    assert [basic(client, "wrong").status_code for _ in range(2)] == [403, 403]
    assert basic(client, "wrong").status_code == 429

    response = basic(client, PASSWORD)

    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many failed logins")


def test_basic_auth_with_the_right_password_is_answered(client, admin):
    assert basic(client, PASSWORD).status_code == 200


def test_a_lockout_is_per_address_so_others_can_still_log_in(client, admin):
    for _ in range(3):
        admin_login(client, "wrong")

    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    response = elsewhere.post(LOGIN, {"username": "boss", "password": PASSWORD})

    assert response.status_code == 302


def test_an_administrator_unlocks_with_axes_reset(client, admin):
    for _ in range(3):
        admin_login(client, "wrong")

    call_command("axes_reset_username", "boss")

    assert admin_login(client, PASSWORD).status_code == 302


def test_an_administrator_unlocks_from_the_access_attempts_page(client, admin):
    for _ in range(3):
        basic(client, "wrong")
    attempt = AccessAttempt.objects.get(username="boss")
    other = Client(REMOTE_ADDR="192.0.2.7")
    other.force_login(admin)

    listed = other.get("/admin/axes/accessattempt/")
    other.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert b"boss" in listed.content
    assert basic(client, PASSWORD).status_code == 200
