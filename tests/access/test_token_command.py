"""`manage.py token`: a token for a bootstrap script, alone on the last line."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from access.models import ApiToken
from tests.rollouts.admin_support import make_service, make_staff

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("token", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def operator(django_user_model):
    return make_staff(django_user_model, "ci", can_apply=True)


def test_it_prints_the_new_token_alone_on_the_last_line(client, operator):
    make_service()
    secret = run("create", "ci", "--expires", "30d").splitlines()[-1]

    response = client.get(
        "/api/rollouts/services/", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert token.expiry is not None


def test_it_scopes_a_token_to_services(operator):
    make_service()
    make_service("rng")
    run("create", "ci", "--services", "worker", "dockercoins_rng")
    token = ApiToken.objects.get()
    names = sorted(s.short_name for s in token.scope_services.all())
    assert names == ["rng", "worker"]
    assert "dockercoins_worker" in run("list")


def test_it_revokes_a_token_by_its_key(operator):
    run("create", "ci")
    key = ApiToken.objects.get().token_key
    assert run("revoke", key).strip() == f"revoked {key}"
    assert not ApiToken.objects.exists()


def test_a_lifetime_may_have_spaces_around_it(operator):
    run("create", "ci", "--expires", " 3d ")
    token = ApiToken.objects.get()
    assert token.expiry is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "nobody"], "no Django user 'nobody'"),
        (["create", "ci", "--expires", "soon"], "not a lifetime (e.g. 30d,"),
        (["create", "ci", "--expires=-3d"], "--expires: '-3d' is not a lifetime"),
        (["create", "ci", "--expires", "0s"], "more than 0 seconds"),
        (["create", "ci", "--services", "nothing"], "--services: no service"),
        (["create", "ci", "--expires", "99999999999d"], "more than 3650d"),
        (["create", "ci", "--stack", "a b/../"], "--stack: 'a b/../' is not a stack"),
        (["revoke", "dcc_nothing"], "no token 'dcc_nothing'"),
    ],
)
def test_bad_input_is_one_line_and_makes_no_token(operator, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)
    assert not ApiToken.objects.exists()
