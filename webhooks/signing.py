"""Standard Webhooks signatures (https://www.standardwebhooks.com/):

    webhook-id: msg_...   webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")>

The secret is "whsec_" + base64 of random bytes; the HMAC key is those bytes.
Any receiver verifies with the spec's libraries (Python: `standardwebhooks`).
"""

import base64
import hashlib
import hmac
import secrets

from django.core.exceptions import ValidationError

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh secret: whsec_ + base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of `secret`; ValueError when it is not whsec_<base64>."""
    body = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(body, validate=True)
    except ValueError:
        raise ValueError("a secret is whsec_ followed by base64") from None
    if len(key) < 24:
        raise ValueError("a secret holds at least 24 random bytes")
    return key


def validate_secret(secret: str) -> None:
    """ValidationError unless `secret` is one `sign` can use (checked when a
    subscription is saved)."""
    try:
        secret_key(secret)
    except ValueError as error:
        raise ValidationError(f"{error} (e.g. {PREFIX}…, as generated)") from None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value for one delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secret: str, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "Content-Type": "application/json",
    }
