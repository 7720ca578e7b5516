"""What may be sent to the swarm: one set of rules for the admin, the API and the
command line. Nothing that fails here ever reaches the engine.
"""

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from rollouts.models import (
    SPEC_FIELDS,
    DeadlineAction,
    FailureAction,
    KnownImage,
    Mode,
    Order,
    RollbackFailureAction,
    Service,
)
from rollouts.specs import TAG_PATTERN, human_duration, parse_image

MAX_DURATION = 24 * 3600.0  # seconds; longer is a typo, not a policy
MAX_REPLICAS = 1000
MAX_PARALLELISM = 1000

_CHOICES = {
    "mode": Mode,
    "update_failure_action": FailureAction,
    "update_order": Order,
    "rollback_failure_action": RollbackFailureAction,
    "rollback_order": Order,
    "deadline_action": DeadlineAction,
}


def validate_desired(*, service: Service, desired: dict) -> None:
    """Raise ValidationError({field: [messages]}) unless `desired` may be applied.

    `desired` may hold only some SPEC_FIELDS; the others are the service's own.
    """
    unknown = set(desired) - set(SPEC_FIELDS)
    if unknown:
        raise ValidationError({NON_FIELD_ERRORS: f"unknown fields: {sorted(unknown)}"})
    spec = {**service.desired_spec(), **desired}
    errors: dict[str, list[str]] = {}

    def error(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if service.missing:
        error(
            NON_FIELD_ERRORS,
            f"service {service.name} no longer exists in the swarm "
            "(run `rollout sync` after re-deploying the stack)",
        )
    for field, choices in _CHOICES.items():
        if spec[field] not in choices.values:
            allowed = ", ".join(choices.values)
            error(field, f"{spec[field]!r} is not one of: {allowed}")
    _check_image(spec, error)
    _check_replicas(spec, error)
    _check_policy(spec, "update", error)
    _check_policy(spec, "rollback", error)
    _check_duration(spec, "progress_deadline", error, minimum=1)
    if spec.get("stable_for") is not None:
        _check_duration(spec, "stable_for", error, minimum=0)
    if errors:
        raise ValidationError(errors)


def _check_image(spec: dict, error) -> None:
    image, tag = spec["image"] or "", spec["tag"] or ""
    if not image or ":" in image.split("/")[-1] or "@" in image:
        error("image", f"{image!r} is not an image repository (e.g. dockercoins)")
        return
    if not TAG_PATTERN.match(tag):
        error("tag", f"{tag!r} is not a valid tag (letters, digits, . _ -)")
        return
    reference = f"{image}:{tag}"
    if parse_image(reference) is None:
        error("image", f"{reference!r} is not a valid image reference")
        return
    if not KnownImage.objects.filter(reference=reference).exists():
        known = KnownImage.objects.filter(reference__startswith=f"{image}:")
        tags = [ref.split(":")[-1] for ref in known.values_list("reference", flat=True)]
        hint = f"known tags: {', '.join(tags)}" if tags else "no tag of it is known"
        error(
            "tag",
            f"image {reference} is not on the swarm's engine ({hint}; "
            "`rollout sync` refreshes the list)",
        )


def _check_replicas(spec: dict, error) -> None:
    replicas = spec["replicas"]
    if spec["mode"] == Mode.GLOBAL:
        if replicas is not None:
            error("replicas", "a global service runs one task per node: leave empty")
    elif replicas is None:
        error("replicas", "a replicated service needs a number of replicas")
    elif not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        error("replicas", f"must be a whole number from 0 to {MAX_REPLICAS}")


def _check_policy(spec: dict, prefix: str, error) -> None:
    parallelism = spec[f"{prefix}_parallelism"]
    # 0 is the engine's "all tasks at once"; allowed, and shown as such.
    if not isinstance(parallelism, int) or not 0 <= parallelism <= MAX_PARALLELISM:
        error(
            f"{prefix}_parallelism",
            f"must be a whole number from 0 (all at once) to {MAX_PARALLELISM}",
        )
    ratio = spec[f"{prefix}_max_failure_ratio"]
    if not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        error(f"{prefix}_max_failure_ratio", "must be between 0 and 1 (0.2 = 20%)")
    _check_duration(spec, f"{prefix}_delay", error, minimum=0)
    # 0 is accepted with the engine's meaning, "the default" (5 s); the service
    # layer stores it as 5 s so that plan and the engine agree.
    _check_duration(spec, f"{prefix}_monitor", error, minimum=0)
    delay, monitor = spec[f"{prefix}_delay"], spec[f"{prefix}_monitor"]
    if (
        spec[f"{prefix}_failure_action"] == FailureAction.ROLLBACK
        and _is_number(delay)
        and _is_number(monitor)
        and monitor < delay
    ):
        error(
            f"{prefix}_monitor",
            f"with failure action rollback the monitor ({human_duration(monitor)}) "
            f"must be at least the delay ({human_duration(delay)}), or a failing "
            "batch is noticed only after the next one started",
        )


def _check_duration(spec: dict, field: str, error, *, minimum: float) -> None:
    value = spec[field]
    if not _is_number(value):
        error(field, "must be a number of seconds")
    elif value < minimum:
        error(field, f"must be at least {human_duration(minimum)}")
    elif value > MAX_DURATION:
        error(field, f"must be at most {human_duration(MAX_DURATION)}")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
