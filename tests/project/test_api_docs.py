"""The API describes itself: /api/ lists it, /api/schema/ is its OpenAPI
schema, /api/docs/ browses that schema with Swagger UI from our own static
files (drf-spectacular-sidecar, served by whitenoise)."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_api_index_lists_every_endpoint_and_the_schema(client):
    data = client.get("/api/").json()

    assert data["schema"] == "/api/schema/"
    assert data["docs"] == "/api/docs/"
    listed = {(e["method"], e["path"]) for e in data["endpoints"]}
    assert {
        ("GET", "/api/stats/"),
        ("GET", "/api/rollouts/services/{service}/"),
        ("GET", "/api/rollouts/rollouts/"),
    } <= listed


def test_the_schema_is_openapi_3_for_anyone(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert schema["openapi"].startswith("3.")
    assert "/api/rollouts/rollouts/{rollout}/" in schema["paths"]
    assert "basicAuth" in schema["components"]["securitySchemes"]


def test_the_schema_generates_without_warnings(tmp_path):
    # --fail-on-warn: a view whose answer the schema cannot describe fails here.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "s.yaml"
    )


def test_the_docs_page_loads_swagger_ui_from_our_static_files(client):
    html = client.get("/api/docs/").content.decode()

    scripts = re.findall(r'src="/static/([^"]+)"', html)
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in scripts
    assert all(finders.find(path) for path in scripts)
    assert "//cdn" not in html
