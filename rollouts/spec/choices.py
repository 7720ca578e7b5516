"""The choice lists of a service's spec, shared by the field declaration
(`rollouts.spec.fields`) and the schema (`rollouts.models`): here, so that neither
imports the other's module for them."""

from django.db import models


class Mode(models.TextChoices):
    REPLICATED = "replicated"
    GLOBAL = "global"


class FailureAction(models.TextChoices):
    PAUSE = "pause"
    CONTINUE = "continue"
    ROLLBACK = "rollback"


class RollbackFailureAction(models.TextChoices):
    PAUSE = "pause"
    CONTINUE = "continue"


class Order(models.TextChoices):
    STOP_FIRST = "stop-first"
    START_FIRST = "start-first"


class DeadlineAction(models.TextChoices):
    REPORT = "report", "report the rollout as failed"
    PAUSE = "pause", "mark the rollout paused for an operator"
    ROLLBACK = "rollback", "roll the service back"


class AnalysisTemplate(models.TextChoices):
    """Which measurement judges a new version (rollouts.analysis.templates)."""

    AUTO = "auto", "the role's own (worker, rng, hasher; none for the rest)"
    OFF = "off", "no analysis"
    WORKER_HASH_RATE = "worker-hash-rate", "hash rate per worker task"
    RNG_LATENCY = "rng-latency", "rng response time"
    HASHER_LATENCY = "hasher-latency", "hasher response time"
    HASHER_ERRORS = "hasher-errors", "share of hasher requests answered 5xx"


class AnalysisMode(models.TextChoices):
    ACT = "act", "promote on pass, roll back on failure"
    DRY_RUN = "dry-run", "record measurements, never act on them"
