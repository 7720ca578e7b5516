"""Hostile input on the framework's own pages: a 4xx, never a 500 (issue 16)."""

import logging

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client

from dockercoins.admin_lookups import declared_lookups

# Every list of every registered admin, Django's and django-axes' included.
ADMIN_LISTS = [
    f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    for model in admin.site._registry
]
HOSTILE_LOOKUPS = [
    "username__regex=[",
    "id__regex=(",
    "password__startswith=pbkdf2",
    "pk__in=1,x",
    "id__gt=99999999999999999999",
    "user__password__startswith=a",
    "attempt_time__gte=not-a-date",
    "is_staff__exact=maybe",
    "groups__id__exact=99999999999999999999",
]


@pytest.fixture
def view_only_staff(client: Client, django_user_model) -> Client:
    user = django_user_model.objects.create_user(username="viewer", is_staff=True)
    view = Permission.objects.filter(codename__startswith="view_")
    user.user_permissions.add(*view)
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", ADMIN_LISTS)
@pytest.mark.parametrize("who", ["anonymous", "view_only", "superuser"])
def test_no_admin_list_answers_a_lookup_it_cannot_take_with_a_500(
    request, url, who, client
):
    if who == "view_only":
        client = request.getfixturevalue("view_only_staff")
    elif who == "superuser":
        client = request.getfixturevalue("admin_client")
    for query in HOSTILE_LOOKUPS:
        response = client.get(f"{url}?{query}")
        assert response.status_code < 500, (url, query, response.status_code)
        if who == "anonymous":
            assert response.status_code == 302  # to the login page, first


@pytest.mark.django_db
def test_a_regex_lookup_on_the_user_list_is_a_400_for_view_only_staff(
    view_only_staff,
):
    response = view_only_staff.get("/admin/auth/user/?username__regex=[")

    assert response.status_code == 400


@pytest.mark.django_db
def test_declared_filters_still_work_and_bad_values_are_the_admins_e1(admin_client):
    assert "is_staff__exact" in declared_lookups(
        admin.site._registry[
            next(m for m in admin.site._registry if m._meta.model_name == "user")
        ]
    )
    assert admin_client.get("/admin/auth/user/?is_staff__exact=1").status_code == 200
    response = admin_client.get("/admin/auth/user/?is_staff__exact=maybe")
    assert response.status_code in (200, 302)


def test_options_on_the_api_docs_is_a_405_not_a_500(client):
    response = client.options("/api/docs/")

    assert response.status_code == 405


def test_the_api_index_does_not_reflect_the_host_header(client):
    response = client.get("/api/", HTTP_HOST="evil.example")

    assert response.status_code == 200
    assert b"evil.example" not in response.content
    assert response.json()["schema"] == "/api/schema/"


def test_a_bad_host_header_is_one_warning_line_without_a_traceback(
    client, settings, caplog
):
    settings.ALLOWED_HOSTS = ["dockercoins.example"]
    logger = logging.getLogger("django.security.DisallowedHost")
    with caplog.at_level(logging.WARNING, logger="django.security.DisallowedHost"):
        response = client.get("/admin/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    [record] = [r for r in caplog.records if r.name == logger.name]
    assert record.levelname == "WARNING"
    assert record.exc_info is None and "evil.example" in record.getMessage()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/admin/login/", "/api/", "/api/docs/", "/json"])
def test_every_page_carries_the_content_security_policy(client, url, redis_url):
    policy = client.get(url)["Content-Security-Policy"]

    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy


def test_the_json_fast_path_sends_the_same_policy_as_django(redis_url):
    import io

    from django.core.wsgi import get_wsgi_application

    from mining.fastpath import with_fast_json

    seen = {}
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/json",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    app = with_fast_json(get_wsgi_application())
    app(environ, lambda status, headers: seen.update(headers))
    from csp.utils import build_policy

    assert seen["Content-Security-Policy"] == build_policy()
