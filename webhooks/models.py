"""Subscriptions, and the outbox of deliveries with each attempt's answer.

A Delivery row is written in the transaction that records the rollout event
it tells of (webhooks.outbox), once per subscription and event, so none is
lost and none is made twice; `webhooks deliver` sends it, retrying with the
same webhook-id, so a receiver drops a repeat by its id.
"""

from django.db import models

from rollouts.models import Rollout, RolloutEvent, Service
from webhooks.signing import new_secret, validate_secret
from webhooks.targets import validate_target


class EventType(models.TextChoices):
    QUEUED = "rollout.queued", "queued"
    STARTED = "rollout.started", "started"
    COMPLETED = "rollout.completed", "completed"
    FAILED = "rollout.failed", "failed"
    ROLLED_BACK = "rollout.rolled_back", "rolled back"
    SUPERSEDED = "rollout.superseded", "superseded"
    ABORTED = "rollout.aborted", "aborted"
    DEADLINE_PASSED = "rollout.deadline_passed", "deadline passed"
    NODE_LOST = "rollout.node_lost", "node lost"
    HELD = "rollout.held", "held (canary analysis inconclusive)"
    PROMOTED = "rollout.promoted", "promoted (canary)"
    DRIFT_SEEN = "service.drift_seen", "drift seen (changed outside)"


class Subscription(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(
        max_length=500,
        validators=[validate_target],
        help_text="http(s), no credentials; redirects are never followed",
    )
    secret = models.CharField(
        max_length=100,
        default=new_secret,
        validators=[validate_secret],
        help_text="whsec_…: receivers verify the webhook-signature with it",
    )
    events = models.JSONField(
        default=list, help_text="event types wanted; none chosen: all"
    )
    stacks = models.CharField(
        max_length=300,
        blank=True,
        help_text="comma-separated stack names; empty: any stack",
    )
    services = models.ManyToManyField(
        Service,
        blank=True,
        related_name="+",
        help_text="only these services; none chosen: any service",
    )
    slack = models.BooleanField(
        "Slack-compatible body",
        default=False,
        help_text='send {"text": "…"} (a Slack or Mattermost incoming webhook)',
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str, service: Service) -> bool:
        if not self.active or (self.events and event_type not in self.events):
            return False
        stacks = [s.strip() for s in self.stacks.split(",") if s.strip()]
        if stacks and service.stack not in stacks:
            return False
        chosen = self.services.all()
        return not chosen.exists() or chosen.filter(pk=service.pk).exists()


class DriftSeen(models.Model):
    """One appearance of drift on a service (what runs differs from what we
    last applied): told once to subscribers, open until the drift is gone
    (cleared_at), so the next appearance is news again (webhooks.drift)."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64)  # of the differences
    differences = models.JSONField(help_text="[[field, ours, live], ...]")
    description = models.TextField()
    seen_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-seen_at", "-id"]
        verbose_name_plural = "drift seen"
        constraints = [
            # Two processes syncing at once (the controller and a command
            # line) tell one appearance once.
            models.UniqueConstraint(
                fields=["service"],
                condition=models.Q(cleared_at__isnull=True),
                name="one_open_drift_per_service",
            )
        ]

    def __str__(self) -> str:
        return f"{self.service.name}: {self.description}"


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    GAVE_UP = "gave_up", "gave up"


class Delivery(models.Model):
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    # What it tells of, one delivery per subscription and each: a rollout's
    # transition (source, rollout) or an appearance of drift (drift).
    source = models.ForeignKey(
        RolloutEvent, on_delete=models.CASCADE, related_name="+", null=True
    )
    rollout = models.ForeignKey(
        Rollout, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    drift = models.ForeignKey(
        DriftSeen, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    message_id = models.CharField(max_length=60, unique=True)  # webhook-id
    body = models.TextField(help_text="the JSON sent, byte for byte each time")
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    # A sender's claim: another sender leaves the row alone until then.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "source"], name="one_delivery_per_event"
            ),
            models.UniqueConstraint(
                fields=["subscription", "drift"], name="one_delivery_per_drift"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription} ({self.state})"


class Attempt(models.Model):
    """One try of a delivery and the receiver's answer (the admin's log)."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    answer = models.TextField(blank=True, help_text="the first 500 characters")
    error = models.CharField(max_length=300, blank=True)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.status_code or self.error}"
