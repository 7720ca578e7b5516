"""A worker service with known images, and an API client authenticated by an
operator's token (what a pipeline holds)."""

from typing import Any

import pytest
from django.test import Client

from access.tokens import token_create
from rollouts.models import Service
from tests.rollouts.admin_support import known_images, make_service, make_staff


@pytest.fixture
def worker() -> Service:
    known_images("1.0", "1.1", "bugged")
    return make_service(live_update_state="completed")


class Pipeline:
    """POSTs JSON with `Authorization: Bearer <token>`, as a CI job does."""

    def __init__(self, client: Client, secret: str) -> None:
        self.client = client
        self.headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    def post(self, path: str, body: object = None, **headers: Any):
        return self.client.post(
            f"/api/rollouts/services/{path}",
            {} if body is None else body,
            content_type="application/json",
            **self.headers,
            **headers,
        )


@pytest.fixture
def operator(django_user_model):
    return make_staff(django_user_model, "ci", can_apply=True)


@pytest.fixture
def pipeline(client, operator) -> Pipeline:
    _, secret = token_create(user=operator, name="CI")
    return Pipeline(client, secret)
