"""The admin makes a token for a person and shows it once; revoking deletes it."""

import re

import pytest
from django.contrib.messages import get_messages

from access.models import ApiToken
from access.tokens import token_create
from tests.rollouts.admin_support import make_service, make_staff

pytestmark = pytest.mark.django_db

ADD = "/admin/access/apitoken/add/"


@pytest.fixture
def admin_client(client, django_user_model):
    boss = django_user_model.objects.create_superuser(username="boss")
    client.force_login(boss)
    return client


def test_it_shows_the_new_token_once_and_the_token_works(
    admin_client, django_user_model
):
    worker = make_service()
    operator = make_staff(django_user_model, "ci", can_apply=True)

    response = admin_client.post(
        ADD,
        {
            "user": operator.pk,
            "name": "CI of worker",
            "lifetime": "30",
            "scope_stack": "",
            "scope_services": [worker.pk],
        },
        follow=True,
    )

    assert response.status_code == 200
    shown = " ".join(str(m) for m in get_messages(response.wsgi_request))
    secret = re.search(r"dcc_[0-9a-f]+", shown).group(0)
    token = ApiToken.objects.get()
    assert token.expiry is not None and list(token.scope_services.all()) == [worker]
    answer = admin_client.get(
        "/api/rollouts/services/", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert answer.status_code == 200
    page = admin_client.get(f"/admin/access/apitoken/{token.pk}/change/")
    assert secret not in page.content.decode()


def test_a_stack_scope_must_be_a_stack_name(admin_client, django_user_model):
    operator = make_staff(django_user_model, "ci", can_apply=True)

    response = admin_client.post(
        ADD, {"user": operator.pk, "lifetime": "30", "scope_stack": "a b/../"}
    )

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["scope_stack"]
    assert "is not a stack name" in error
    assert not ApiToken.objects.exists()


def test_staff_who_are_not_superusers_cannot_see_tokens(client, django_user_model):
    client.force_login(make_staff(django_user_model, "ops", can_apply=True))
    assert client.get(ADD).status_code == 403
    assert client.get("/admin/access/apitoken/").status_code == 403


def test_revoking_in_the_admin_deletes_the_token(admin_client, django_user_model):
    token_create(user=make_staff(django_user_model, "ci", can_apply=True))
    token = ApiToken.objects.get()

    admin_client.post(
        "/admin/access/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert not ApiToken.objects.exists()
