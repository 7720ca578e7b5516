"""Deliveries carry Standard Webhooks signatures any receiver can verify."""

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.signing import headers, new_secret, secret_key

BODY = b'{"type":"rollout.completed"}'


def test_the_standardwebhooks_library_verifies_our_signature():
    secret = new_secret()
    # The library checks the timestamp against its own clock: sign "now".
    signed = headers(secret, "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, signed) == {"type": "rollout.completed"}


def test_a_changed_body_or_another_secret_fails_verification():
    secret = new_secret()
    signed = headers(secret, "msg_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, signed)


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body():
    # The spec's own example (standard-webhooks spec/standard-webhooks.md).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signed = headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signed["webhook-signature"] == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize("secret", ["whsec_!!!", "whsec_c2hvcnQ="])
def test_a_malformed_secret_is_refused(secret):
    with pytest.raises(ValueError):
        secret_key(secret)
