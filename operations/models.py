"""What the write API remembers of its callers' requests."""

from django.conf import settings
from django.db import models

from rollouts.models import Rollout


class IdempotencyKey(models.Model):
    """A write request's `Idempotency-Key`, per user: a retry with the same key
    answers the rollout the first request queued instead of queueing another."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    # Method, path and body digest of the first request: the same key sent
    # with another request is refused rather than answered with a stale rollout.
    fingerprint = models.CharField(max_length=64)
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], name="one_idempotency_key_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} → rollout #{self.rollout_id}"
