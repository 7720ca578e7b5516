"""A NUL byte in a URL is a 404 or 400, never a 500 (found walking the stack).

On the stack the database is PostgreSQL, whose text cannot hold NUL: a lookup
with one was a psycopg DataError, a 500, on /api/rollouts/services/%00/, on an
admin list filter (?state__exact=%00) and on HTTP Basic with such a username.
These tests run on SQLite, which takes NUL, so they check the refusal itself.
"""

import base64

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser(username="boss", password="pw")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    ["/api/rollouts/services/%00/", "/api/rollouts/services/worker%00/revisions/"],
)
def test_a_nul_byte_in_an_api_path_is_a_json_404(staff, url):
    response = staff.get(url)

    assert response.status_code == 404
    assert "NUL" in response.json()["detail"]


def test_a_nul_byte_in_an_api_filter_is_a_json_400(staff):
    response = staff.get("/api/rollouts/rollouts/?service=%00")

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/rollouts/rollout/?state__exact=%00",
        "/admin/axes/accessattempt/?username=%00",
        "/admin/auth/user/?username=%00",
    ],
)
def test_a_nul_byte_in_an_admin_filter_is_a_400(staff, url):
    response = staff.get(url)

    assert response.status_code == 400
    assert b"NUL" in response.content


def test_a_nul_byte_in_an_admin_path_is_a_404(staff):
    response = staff.get("/admin/rollouts/service/%00/change/")

    assert response.status_code == 404


def test_basic_auth_with_a_nul_in_the_username_is_refused_not_looked_up(client):
    token = base64.b64encode(b"bo\x00ss:pw").decode()

    response = client.get(
        "/api/rollouts/services/", HTTP_AUTHORIZATION=f"Basic {token}"
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid username/password."}
