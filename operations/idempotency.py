"""`Idempotency-Key`: a retried write answers the rollout of the first try.

A pipeline whose connection dropped cannot know whether its request queued a
rollout; it retries with the same key and gets that rollout (queued, running
or ended) instead of a second one, or a refusal because the service is busy
with its own first try.
"""

import hashlib
import json
import re
from collections.abc import Callable

from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from operations.models import IdempotencyKey
from rollouts.models import Rollout

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no spaces


def request_key(request: Request) -> str | None:
    """The request's key, None without one; ValidationError (400) when it is
    not 1 to 200 printable ASCII characters."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise ValidationError(
            {"detail": f"{HEADER} must be 1 to 200 printable ASCII characters"}
        )
    return key


def fingerprint(request: Request) -> str:
    """Method, path and body: what must match for a retry to be the same
    request (?wait may differ: a retry may wait longer)."""
    body = json.dumps(request.data, sort_keys=True, default=str)
    text = f"{request.method} {request.path}\n{body}"
    return hashlib.sha256(text.encode()).hexdigest()


def once(
    request: Request, user: User, key: str, perform: Callable[[], Rollout]
) -> tuple[Rollout, bool]:
    """(the rollout, replayed): `perform()`'s, or the first try's for `key`.

    Two tries racing: the loser's rollout and key are rolled back together
    (IntegrityError on the key), or its service call is refused because the
    winner's rollout is active; either way it answers the winner's rollout.
    """
    wanted = fingerprint(request)
    earlier = _earlier(user, key, wanted)
    if earlier is not None:
        return earlier, True
    try:
        with transaction.atomic():
            rollout = perform()
            IdempotencyKey.objects.create(
                user=user, key=key, fingerprint=wanted, rollout=rollout
            )
            return rollout, False
    except Exception:  # IntegrityError, or the service's refusal
        earlier = _earlier(user, key, wanted)
        if earlier is None:
            raise
        return earlier, True


def _earlier(user: User, key: str, wanted: str) -> Rollout | None:
    found = IdempotencyKey.objects.filter(user=user, key=key).first()
    if found is None:
        return None
    if found.fingerprint != wanted:
        raise ValidationError(
            {
                "detail": f"{HEADER} {key!r} was used for another request "
                f"(rollout #{found.rollout_id}): use a new key for a new request"
            }
        )
    return found.rollout
