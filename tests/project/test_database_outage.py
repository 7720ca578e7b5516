"""While the database does not answer, the webui says so (503), never a 500,
and it answers normally again as soon as the database is back."""

import pytest
from django.db import OperationalError, connections
from django.test import Client

pytestmark = pytest.mark.django_db

LOST = "consuming input failed: server closed the connection unexpectedly"


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client(raise_request_exception=False)
    user = django_user_model.objects.create_user(
        username="operator", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client


@pytest.fixture
def database_down(monkeypatch):
    """Every query fails as on a PostgreSQL that went away; undo() brings it back."""

    def lost(*args, **kwargs):
        raise OperationalError(LOST)

    monkeypatch.setattr(connections["default"], "cursor", lost)
    return monkeypatch


def test_the_api_answers_503_json_while_the_database_is_down(staff, database_down):
    response = staff.get("/api/rollouts/services/")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "the database does not answer; try again in a few seconds"
    }
    assert response["Retry-After"] == "5"


def test_the_admin_answers_an_error_page_while_the_database_is_down(
    staff, database_down
):
    response = staff.get("/admin/rollouts/service/")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert b"The database does not answer" in response.content


def test_the_webui_recovers_by_itself_when_the_database_is_back(staff, database_down):
    assert staff.get("/api/rollouts/services/").status_code == 503
    database_down.undo()

    assert staff.get("/api/rollouts/services/").status_code == 200
    assert staff.get("/admin/rollouts/service/").status_code == 200


def test_a_bug_is_still_a_plain_500(staff, monkeypatch):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("rollouts.api.views.services_with_active", bug)
    response = staff.get("/api/rollouts/services/")

    assert response.status_code == 500
