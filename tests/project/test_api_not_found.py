"""An unknown URL under /api/ is a JSON 404, as every API answer is JSON."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url", ["/api/nope/", "/api/rollouts/nope/", "/api/rollouts/services/worker/x/"]
)
def test_an_unknown_api_url_is_a_json_404(client, url):
    response = client.get(url)

    assert response.status_code == 404
    assert response.json() == {"detail": f"Not found: {url}"}


def test_an_unknown_page_outside_the_api_is_still_djangos_404(client):
    response = client.get("/nope/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
