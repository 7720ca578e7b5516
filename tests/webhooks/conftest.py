"""A subscription, and a real HTTP receiver on loopback that verifies every
delivery's signature with the `standardwebhooks` package, as any receiver
following the spec would."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from tests.rollouts.admin_support import known_images, make_service
from webhooks.models import Subscription


class Receiver:
    """Answers `status` (200 by default); keeps each verified delivery."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.status = 200
        self.location = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                # Raises WebhookVerificationError on a bad signature.
                receiver.verifier.verify(body, headers)
                receiver.headers.append(headers)
                receiver.received.append(json.loads(body))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def worker():
    known_images("1.0", "1.1", "bugged")
    return make_service(live_update_state="completed")


@pytest.fixture
def subscription(db) -> Subscription:
    return Subscription.objects.create(name="chat", url="http://127.0.0.1:9/hook")


@pytest.fixture
def receiver(subscription) -> Iterator[Receiver]:
    found = Receiver(subscription.secret)
    subscription.url = found.url
    subscription.save()
    yield found
    found.stop()
