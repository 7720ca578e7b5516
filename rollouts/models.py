"""What operators want a swarm service to look like, and what happened when we asked.

A `Service` row holds the desired spec (edited in the admin) and the last live state
the controller observed. Saving a change records a `Revision` (an immutable snapshot
of the desired spec) and queues a `Rollout` that applies it. `RolloutEvent` rows are
the step-by-step record a rollout leaves behind.
"""

from typing import Any

from django.conf import settings
from django.db import models

from rollouts.spec.choices import (
    AnalysisMode,
    AnalysisTemplate,
    DeadlineAction,
    FailureAction,
    Mode,
    Order,
    RollbackFailureAction,
)
from rollouts.spec.fields import SPEC_FIELDS


class Service(models.Model):
    # Identity in the swarm.
    name = models.CharField(max_length=200, unique=True, help_text="dockercoins_worker")
    stack = models.CharField(max_length=100, db_index=True)
    short_name = models.CharField(max_length=100, help_text="worker")
    swarm_id = models.CharField(max_length=64, blank=True)

    # Desired spec: the columns of rollouts.spec.fields.FIELDS, where each field is
    # declared (kind, unit, default, flag, help). Durations are seconds here.
    # Defaults are the engine's (docker service create), not the SDK's.
    image = models.CharField(max_length=255, help_text="Repository, e.g. dockercoins")
    tag = models.CharField(max_length=128, help_text="e.g. 1.0, 1.1, bugged")
    mode = models.CharField(
        max_length=16, choices=Mode.choices, default=Mode.REPLICATED
    )
    replicas = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty for a global service"
    )
    update_parallelism = models.PositiveIntegerField(default=1)
    update_delay = models.FloatField(default=0, help_text="seconds")
    update_failure_action = models.CharField(
        max_length=16, choices=FailureAction.choices, default=FailureAction.PAUSE
    )
    update_monitor = models.FloatField(default=5, help_text="seconds")
    update_max_failure_ratio = models.FloatField(default=0)
    update_order = models.CharField(
        max_length=16, choices=Order.choices, default=Order.STOP_FIRST
    )
    rollback_parallelism = models.PositiveIntegerField(default=1)
    rollback_delay = models.FloatField(default=0, help_text="seconds")
    rollback_failure_action = models.CharField(
        max_length=16,
        choices=RollbackFailureAction.choices,
        default=RollbackFailureAction.PAUSE,
    )
    rollback_monitor = models.FloatField(default=5, help_text="seconds")
    rollback_max_failure_ratio = models.FloatField(default=0)
    rollback_order = models.CharField(
        max_length=16, choices=Order.choices, default=Order.STOP_FIRST
    )
    progress_deadline = models.FloatField(
        default=600, help_text="seconds a rollout may take before it is failed"
    )
    deadline_action = models.CharField(
        max_length=16, choices=DeadlineAction.choices, default=DeadlineAction.REPORT
    )
    # Like Kubernetes' minReadySeconds: new tasks must stay up this long before
    # a rollout completes. Empty: the update monitor window (rollouts.control.outcome).
    stable_for = models.FloatField(
        null=True,
        blank=True,
        help_text="seconds new tasks must stay up; empty = the update monitor",
    )
    # The canary step and its analysis (rollouts.spec.fields: "canary" onwards).
    canary = models.PositiveIntegerField(default=0, help_text="0 = no canary step")
    analysis_template = models.CharField(
        max_length=32, choices=AnalysisTemplate.choices, default=AnalysisTemplate.AUTO
    )
    analysis_threshold = models.FloatField(default=0.2)
    analysis_interval = models.FloatField(default=30, help_text="seconds")
    analysis_count = models.PositiveIntegerField(default=2)
    analysis_failure_limit = models.PositiveIntegerField(default=0)
    analysis_inconclusive_limit = models.PositiveIntegerField(default=0)
    analysis_min_samples = models.PositiveIntegerField(default=3)
    analysis_mode = models.CharField(
        max_length=16, choices=AnalysisMode.choices, default=AnalysisMode.ACT
    )

    # What we last wrote to the swarm (the engine's Spec as read right after our
    # write), to tell drift (someone else's change) from our own.
    applied_spec = models.JSONField(default=dict, blank=True)
    applied_spec_at = models.DateTimeField(null=True, blank=True)

    # Live state, as last observed by `rollout sync` or the controller.
    live_image = models.CharField(max_length=512, blank=True)
    live_mode = models.CharField(max_length=16, blank=True)
    live_running = models.PositiveIntegerField(default=0)
    live_desired = models.PositiveIntegerField(default=0)
    live_update_state = models.CharField(max_length=32, blank=True)
    live_update_message = models.TextField(blank=True)
    # [{"slot": "3", "tasks": [{"id", "image", "node", "desired_state", "state",
    #   "error", "since"}, ...newest first]}]: `docker service ps`, grouped.
    live_tasks = models.JSONField(default=list, blank=True)
    live_spec = models.JSONField(default=dict, blank=True)
    # The engine's UpdatedAt: when anyone last wrote the service.
    live_updated_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    missing = models.BooleanField(
        default=False, help_text="The service no longer exists in the swarm"
    )

    class Meta:
        ordering = ["name"]
        permissions = [("apply_rollout", "Can change and apply rollouts")]

    def __str__(self) -> str:
        return self.name

    @property
    def image_ref(self) -> str:
        return f"{self.image}:{self.tag}"

    def desired_spec(self) -> dict[str, Any]:
        """The desired spec fields (rollouts.spec.fields.SPEC_FIELDS) as stored. A
        Revision stores exactly these, so undo can put any of them back."""
        return {field: getattr(self, field) for field in SPEC_FIELDS}

    @staticmethod
    def known_tags(image: str) -> list[str]:
        """The tags of `image` the swarm's engine had at the last sync (KnownImage),
        for validation, which must not query the database itself."""
        prefix = f"{image}:"
        references = KnownImage.objects.filter(reference__startswith=prefix)
        return [
            ref[len(prefix) :] for ref in references.values_list("reference", flat=True)
        ]


class Revision(models.Model):
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="revisions"
    )
    number = models.PositiveIntegerField()
    spec = models.JSONField(help_text="The desired spec fields, as saved")
    # Local image id when the image has no registry digest (as on a workshop node),
    # the digest-pinned reference when it has one.
    image_id = models.CharField(max_length=100, blank=True)
    image_digest = models.CharField(max_length=255, blank=True)
    change_cause = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "number"], name="one_revision_number_per_service"
            )
        ]

    def __str__(self) -> str:
        return f"{self.service.name} revision {self.number}"


class RolloutKind(models.TextChoices):
    APPLY = "apply", "apply a revision"
    ROLLBACK = "rollback", "engine rollback to the previous spec"


class RolloutState(models.TextChoices):
    QUEUED = "queued"
    APPLYING = "applying"
    WATCHING = "watching"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back", "rolled back"
    PAUSED = "paused"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded", "superseded by an outside change"
    ABORTED = "aborted"


ACTIVE_STATES = (RolloutState.QUEUED, RolloutState.APPLYING, RolloutState.WATCHING)
RUNNING_STATES = (RolloutState.APPLYING, RolloutState.WATCHING)
FINAL_STATES = (
    RolloutState.COMPLETED,
    RolloutState.ROLLED_BACK,
    RolloutState.PAUSED,
    RolloutState.FAILED,
    RolloutState.CANCELLED,
    RolloutState.SUPERSEDED,
    RolloutState.ABORTED,
)


class Rollout(models.Model):
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="rollouts"
    )
    revision = models.ForeignKey(
        Revision,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rollouts",
    )
    kind = models.CharField(max_length=16, choices=RolloutKind.choices)
    state = models.CharField(
        max_length=16, choices=RolloutState.choices, default=RolloutState.QUEUED
    )
    # A mode change removes and re-creates the service; only with explicit consent.
    recreate_confirmed = models.BooleanField(default=False)
    # Why it was asked for; an apply also has its revision's change cause.
    change_cause = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Engine time of our write; an UpdateStatus older than this is someone else's.
    applied_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it ended the way it did")
    update_state = models.CharField(max_length=32, blank=True)
    tasks_done = models.PositiveIntegerField(default=0)
    tasks_total = models.PositiveIntegerField(default=0)
    # Which controller (or `rollout apply --wait`) is driving it, until when.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # {task id: last state seen}: the watcher records each transition once.
    seen_tasks = models.JSONField(default=dict, blank=True)
    # The engine's Spec right after our write: anything else later is an outside
    # write (rollouts.control.outcome.outside_changes).
    applied_spec = models.JSONField(default=dict, blank=True)
    # New tasks that ended, as the watcher saw them, first sight kept even after
    # the engine forgets the task: [{"task", "slot", "image", "state",
    # "exit_code", "error", "at"}] (rollouts.control.outcome.ended_tasks).
    failures = models.JSONField(default=list, blank=True)
    # {task id: "service.slot"}: every task seen, to name tasks in engine messages.
    task_names = models.JSONField(default=dict, blank=True)
    # When the engine stopped answering a driver of this rollout, if it has not yet
    # answered again.
    unreachable_since = models.DateTimeField(null=True, blank=True)
    aborted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The canary step (rollouts.control.canary): "" (none), "holding" (the
    # engine waits after the canary batch while the analysis runs), "promoted",
    # "released" (it ended while held; the hold was taken off), "batches" (no
    # canary: measured between the engine's batches), "window" (measured
    # during the stability window; completion waits for it), "passed" (that
    # analysis passed), "dry-run" (measured, never held). The old version is
    # the baseline.
    canary_state = models.CharField(max_length=16, blank=True)
    baseline_version = models.CharField(max_length=128, blank=True)
    # An operator's promotion of a held rollout, carried out by its driver.
    promote_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    promote_requested_at = models.DateTimeField(null=True, blank=True)
    promote_cause = models.CharField(max_length=500, blank=True)
    # Not stored: seconds after which the last look's driver expects the next
    # one to change the verdict (the stability window's end, known from the
    # engine's dates), for a follower that would otherwise wait a whole
    # interval (rollouts.control.verdict.look_again_in). None: no guess.
    look_again_in: float | None = None

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.service.name} {self.kind} #{self.pk} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class RolloutEvent(models.Model):
    rollout = models.ForeignKey(
        Rollout, on_delete=models.CASCADE, related_name="events"
    )
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=16)  # state, task, progress, error, info
    message = models.TextField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.kind}: {self.message}"


class AnalysisMeasurement(models.Model):
    """One measurement of a rollout's analysis (rollouts.analysis.rules), stored
    with its figures so the verdict can be explained and drawn afterwards."""

    rollout = models.ForeignKey(
        Rollout, on_delete=models.CASCADE, related_name="measurements"
    )
    at = models.DateTimeField(auto_now_add=True)
    template = models.CharField(max_length=32)
    # Argo Rollouts' words: Successful, Failed, Inconclusive, Error.
    phase = models.CharField(max_length=16)
    # Per task, in the template's unit; None when there was no data.
    value = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    limit = models.FloatField(null=True, blank=True)
    new_version = models.CharField(max_length=128, blank=True)
    old_version = models.CharField(max_length=128, blank=True)
    new_tasks = models.PositiveIntegerField(default=0)
    old_tasks = models.PositiveIntegerField(default=0)
    dry_run = models.BooleanField(default=False)
    message = models.TextField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.phase}: {self.message}"


class KnownImage(models.Model):
    """An image the controller's engine has, recorded at each sync.

    The admin runs in the webui, which never gets the Docker socket; it validates
    an operator's image choice against this inventory instead.
    """

    reference = models.CharField(max_length=255, unique=True, help_text="repo:tag")
    image_id = models.CharField(max_length=100)
    digest = models.CharField(max_length=255, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["reference"]

    def __str__(self) -> str:
        return self.reference
