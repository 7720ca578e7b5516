"""Subscriptions are made in the admin; a bad target is a form error."""

import pytest

from webhooks.models import Subscription

pytestmark = pytest.mark.django_db

ADD = "/admin/webhooks/subscription/add/"


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser(username="boss"))
    return client


def form(url: str) -> dict:
    return {
        "name": "chat",
        "url": url,
        "events": ["rollout.completed", "rollout.rolled_back"],
        "stacks": "",
        "secret": Subscription._meta.get_field("secret").default(),
        "active": "on",
    }


def test_it_saves_a_subscription_with_the_events_chosen(admin_client):
    response = admin_client.post(ADD, form("https://chat.example.test/hook"))
    assert response.status_code == 302
    assert Subscription.objects.get().events == [
        "rollout.completed",
        "rollout.rolled_back",
    ]


@pytest.mark.parametrize(
    "url", ["https://me:secret@chat.example.test/hook", "ftp://chat.example.test/"]
)
def test_a_bad_target_is_a_form_error(admin_client, url):
    response = admin_client.post(ADD, form(url))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("secret", ["notasecret", "whsec_!!!", "whsec_c2hvcnQ="])
def test_a_bad_secret_is_a_form_error(admin_client, secret):
    data = {**form("https://chat.example.test/hook"), "secret": secret}

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["secret"]
    assert "e.g. whsec_" in error
    assert not Subscription.objects.exists()
