"""The rollouts admin, fuzzed: its list actions, its action pages and
its list filters, as anonymous, as view-only staff and as a superuser.

hypothesis draws the values, with the ones attackers send first (non-ASCII
digits, 30 digits, NUL, empty, "1.0"); any 5xx fails with the smallest
request found. FUZZ_EXAMPLES sets the draws per check (default 25).
"""

import os
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollouts.admin.operations import OPERATIONS
from rollouts.models import Revision
from tests.rollouts.admin_support import active_rollout, known_images, make_service

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
HOSTILE = ["", "abc", "1.0", "9" * 30, "\x00", "１", "٣", " 1", "-1", "1e3", "[", "%"]
VALUES = st.one_of(st.sampled_from([*HOSTILE, "1", "2", "0"]), st.text(max_size=12))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
# Query-string names the admin's lists read themselves, besides their filters.
LIST_PARAMETERS = ["o", "p", "q", "e", "all", "_to_field", "_popup"]

pytestmark = pytest.mark.django_db


def rollouts_admins() -> list[admin.ModelAdmin]:
    return [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "rollouts"
    ]


def filter_names(model_admin: admin.ModelAdmin) -> list[str]:
    names = []
    for item in model_admin.list_filter:
        path = item[0] if isinstance(item, list | tuple) else item
        if isinstance(path, str):
            names += [path, f"{path}__exact", f"{path}__id__exact", f"{path}__isnull"]
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{p}" for p in ("year", "month")]
    return names


@pytest.fixture
def rows() -> None:
    known_images("1.0", "1.1")
    service = make_service(pk=1, live_update_state="completed")
    Revision.objects.create(
        service=service, number=1, spec=service.desired_spec(), change_cause="seed"
    )
    make_service("hasher", pk=2)
    active_rollout(make_service("rng", pk=3))


@pytest.fixture(params=["anonymous", "view-only staff", "superuser"])
def persona(request, django_user_model) -> Client:
    client = Client(raise_request_exception=False)
    if request.param == "view-only staff":
        user = django_user_model.objects.create_user("viewer", is_staff=True)
        client.force_login(user)
    elif request.param == "superuser":
        user = django_user_model.objects.create_superuser("root", password="x")
        client.force_login(user)
    return client


def no_server_error(response: Any, what: str) -> None:
    assert response.status_code < 500, f"{response.status_code} for {what}"


def test_the_list_actions_never_answer_a_server_error(rows, persona):
    actions = [op.action for op in OPERATIONS.values()]

    @given(
        action=st.one_of(st.sampled_from(actions), VALUES),
        selected=st.lists(VALUES, max_size=3),
        form=st.dictionaries(
            st.sampled_from(
                ["index", "select_across", "post", "change_cause", "replicas"]
                + ["to_revision", "recreate_confirmed"]
            ),
            VALUES,
        ),
    )
    @FUZZ
    def survives(action: str, selected: list[str], form: dict[str, str]) -> None:
        data = {"action": action, "_selected_action": selected, **form}
        response = persona.post("/admin/rollouts/service/", data)
        no_server_error(response, f"POST /admin/rollouts/service/ {data!r}")

    survives()


def test_the_action_pages_never_answer_a_server_error(rows, persona):
    @given(
        slug=st.sampled_from(list(OPERATIONS)),
        object_id=st.one_of(st.sampled_from(["1", "2", "3"]), VALUES),
        form=st.dictionaries(
            st.sampled_from(["change_cause", "replicas", "to_revision", "revision"]),
            VALUES,
        ),
    )
    @FUZZ
    def survives(slug: str, object_id: str, form: dict[str, str]) -> None:
        url = f"/admin/rollouts/service/{object_id}/{slug}/"
        if "/" in object_id or "?" in object_id or "#" in object_id:
            return  # another URL, not an id
        for response in (persona.get(url, form), persona.post(url, form)):
            no_server_error(response, f"{url} {form!r}")

    survives()


@pytest.mark.parametrize("model_admin", rollouts_admins(), ids=str)
def test_the_list_filters_never_answer_a_server_error(rows, persona, model_admin):
    opts = model_admin.model._meta
    url = f"/admin/{opts.app_label}/{opts.model_name}/"
    names = filter_names(model_admin) + LIST_PARAMETERS

    @given(query=st.dictionaries(st.one_of(st.sampled_from(names), VALUES), VALUES))
    @FUZZ
    def survives(query: dict[str, str]) -> None:
        no_server_error(persona.get(url, query), f"GET {url} {query!r}")

    survives()
