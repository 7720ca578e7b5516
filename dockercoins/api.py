"""/api/: what the API offers, from its own OpenAPI schema (drf-spectacular).

The schema is served at /api/schema/ and browsable at /api/docs/; this index
lists the same operations, so nothing is listed that the schema does not have.
"""

from functools import cache

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

_METHODS = ("get", "put", "post", "patch", "delete")


class DetailSerializer(serializers.Serializer):
    """Every API error without a field: {"detail": "why"}."""

    detail = serializers.CharField()


class EndpointSerializer(serializers.Serializer):
    method = serializers.CharField()
    path = serializers.CharField()
    summary = serializers.CharField(allow_blank=True)


class ApiRootSerializer(serializers.Serializer):
    # Paths, not absolute URLs: an absolute URL is built from the request's
    # Host header, which any client sets (issue 16).
    schema = serializers.CharField(help_text="OpenAPI 3 schema (YAML; ?format=json)")
    docs = serializers.CharField(help_text="the schema, browsable (Swagger UI)")
    endpoints = EndpointSerializer(many=True)


@cache
def endpoints() -> tuple[dict, ...]:
    """Every operation of the schema: method, path, summary (first doc line)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        for method in _METHODS:
            if method in operations:
                operation = operations[method]
                summary = operation.get("summary", "")
                found.append(
                    {"method": method.upper(), "path": path, "summary": summary}
                )
    return tuple(found)


class ApiRoot(APIView):
    """The API's index: links to the schema and docs, and every endpoint."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(summary="this index", tags=["index"], responses=ApiRootSerializer)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "schema": reverse("api-schema"),
                "docs": reverse("api-docs"),
                "endpoints": list(endpoints()),
            }
        )


class ApiDocs(SpectacularSwaggerSplitView):
    """Swagger UI at /api/docs/: GET and HEAD only.

    DRF answers OPTIONS on every view with its metadata, which this HTML-only
    view cannot render: an anonymous OPTIONS was a 500 (issue 16); now 405.
    The split view serves its start-up script as a file (?script), so the
    Content-Security-Policy needs no inline script.
    """

    http_method_names = ["get", "head"]
