"""The one module that talks HTTP to receivers (patched in tests)."""

import requests

from webhooks.models import Subscription


class Answer:
    def __init__(self, status_code: int, text: str) -> None:
        self.status_code, self.text = status_code, text


def post(
    subscription: Subscription, body: str, headers: dict[str, str], timeout: float
) -> Answer:
    """POST `body` to the subscription's URL; redirects are answers, never
    followed (a 3xx is a failed attempt). Raises requests.RequestException
    when no answer came within `timeout` seconds (connect and read each)."""
    response = requests.post(
        subscription.url,
        data=body.encode(),
        headers=headers,
        timeout=(min(timeout, 5.0), timeout),
        allow_redirects=False,
        stream=True,
    )
    try:
        text = next(response.iter_content(500, decode_unicode=False), b"")
    finally:
        response.close()
    return Answer(response.status_code, text.decode("utf-8", "replace"))
