"""What may be sent to the swarm: one set of rules for the admin, the API and the
command line. Nothing that fails here ever reaches the engine.

The per-field rules (kind, choices, range) come from `rollouts.spec.fields`; the rules
between fields and those that need what the controller recorded (the images the
engine has, whether the service still exists) are here.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from rollouts.spec.choices import FailureAction, Mode
from rollouts.spec.fields import (
    BY_NAME,
    CHOICE,
    COUNT,
    DURATION,
    MAX_COUNT,
    RATIO,
    SPEC_FIELDS,
    TAG_GRAMMAR,
    TAG_PATTERN,
    ParseError,
    SpecField,
    human_duration,
)
from rollouts.spec.specs import parse_image

if TYPE_CHECKING:  # the type only: spec/ never imports the models at run time
    from rollouts.models import Service

Report = Callable[[str, str], None]


def parse_values(desired: dict[str, object]) -> dict[str, Any]:
    """`desired` through each field's own strict parser (rollouts.spec.fields), so a
    caller may pass text ("5s", "3") or numbers alike. Raises ValidationError
    keyed by field for what is outside a field's grammar (nan, "٣", "1e3")."""
    errors = _Errors()
    parsed: dict[str, Any] = {}
    for name, value in desired.items():
        field = BY_NAME.get(name)
        if field is None:
            errors(NON_FIELD_ERRORS, f"unknown field {name!r}")
            continue
        try:
            parsed[name] = field.parse(value)
        except ParseError as error:
            errors(name, str(error))
    errors.raise_any()
    return parsed


def validate_values(desired: dict[str, Any]) -> None:
    """Raise ValidationError({field: [messages]}) for every value of `desired`
    that breaks its own field's rule. Needs neither the database nor the engine,
    so the command line reports bad input even with the engine away."""
    errors = _Errors()
    unknown = set(desired) - set(SPEC_FIELDS)
    if unknown:
        errors(NON_FIELD_ERRORS, f"unknown fields: {sorted(unknown)}")
    for name, value in desired.items():
        if name in BY_NAME and value is not None:
            _check_field(BY_NAME[name], value, errors)
    errors.raise_any()


def validate_desired(*, service: "Service", desired: dict[str, Any]) -> None:
    """Raise ValidationError({field: [messages]}) unless `desired` may be applied.

    `desired` may hold only some SPEC_FIELDS; the others are the service's own.
    """
    unknown = set(desired) - set(SPEC_FIELDS)
    if unknown:
        raise ValidationError({NON_FIELD_ERRORS: f"unknown fields: {sorted(unknown)}"})
    spec = {**service.desired_spec(), **desired}
    errors = _Errors()
    if service.missing:
        errors(
            NON_FIELD_ERRORS,
            f"service {service.name} no longer exists in the swarm "
            "(run `rollout sync` after re-deploying the stack)",
        )
    for name, field in BY_NAME.items():
        if field.name != "replicas" and not (field.optional and spec[name] is None):
            _check_field(field, spec[name], errors)
    _check_image(spec, errors, service.known_tags)
    _check_replicas(spec, errors)
    _check_canary(spec, errors)
    for prefix in ("update", "rollback"):
        _check_monitor(spec, prefix, errors)
    errors.raise_any()


class _Errors(dict[str, list[str]]):
    def __call__(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)

    def raise_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


def _check_field(field: SpecField, value: object, error: Report) -> None:
    name = field.name
    if field.kind == CHOICE:
        assert field.choices is not None
        if value not in field.choices.values:
            allowed = ", ".join(field.choices.values)
            error(name, f"{value!r} is not one of: {allowed}")
    elif field.kind == COUNT:
        if not (_is_int(value) and field.minimum <= value <= MAX_COUNT):
            low = "0 (all at once)" if field.policy == "parallelism" else "0"
            error(name, f"must be a whole number from {low} to {MAX_COUNT}")
    elif field.kind == RATIO:
        if not (_is_finite(value) and 0 <= value <= 1):
            error(name, "must be between 0 and 1 (0.2 = 20%)")
    elif field.kind == DURATION:
        _check_duration(field, value, error)
    elif field.max_length is not None and len(str(value)) > field.max_length:
        error(name, f"must be at most {field.max_length} characters")


def _check_duration(field: SpecField, value: object, error: Report) -> None:
    if not _is_finite(value):
        error(field.name, "must be a number of seconds")
        return
    seconds = float(value)
    if seconds < field.minimum:
        error(field.name, f"must be at least {human_duration(field.minimum)}")
    elif field.maximum is not None and seconds > field.maximum:
        error(field.name, f"must be at most {human_duration(field.maximum)}")


def _check_image(
    spec: dict[str, Any], error: Report, known_tags: Callable[[str], list[str]]
) -> None:
    image, tag = spec["image"] or "", spec["tag"] or ""
    if not image or ":" in image.split("/")[-1] or "@" in image:
        error("image", f"{image!r} is not an image repository (e.g. dockercoins)")
        return
    if not TAG_PATTERN.fullmatch(tag):
        error("tag", f"{tag!r} is not a valid tag ({TAG_GRAMMAR})")
        return
    reference = f"{image}:{tag}"
    if parse_image(reference) is None:
        error("image", f"{reference!r} is not a valid image reference")
        return
    tags = known_tags(image)
    if tag not in tags:
        hint = f"known tags: {', '.join(tags)}" if tags else "no tag of it is known"
        error(
            "tag",
            f"image {reference} is not on the swarm's engine ({hint}; "
            "`rollout sync` refreshes the list)",
        )


def _check_replicas(spec: dict[str, Any], error: Report) -> None:
    replicas = spec["replicas"]
    if spec["mode"] == Mode.GLOBAL:
        if replicas is not None:
            error("replicas", "a global service runs one task per node: leave empty")
    elif replicas is None:
        error("replicas", "a replicated service needs a number of replicas")
    else:
        _check_field(BY_NAME["replicas"], replicas, error)


def _check_canary(spec: dict[str, Any], error: Report) -> None:
    """A canary step must leave old tasks to compare with and to hold: fewer
    canary tasks than replicas (0 turns the step off). A global service has
    none (its tasks follow the nodes, not a count)."""
    canary, replicas = spec.get("canary"), spec["replicas"]
    if not _is_int(canary) or canary <= 0:
        return  # 0: no canary step; below 0 is the field's own error
    if spec["mode"] == Mode.GLOBAL:
        error("canary", "a global service has no canary step: set it to 0")
    elif _is_int(replicas) and canary >= replicas:
        error(
            "canary",
            f"{canary} canary task(s) must be fewer than the {replicas} "
            "replica(s): the others keep the old version while the analysis "
            "compares them; 0 turns the canary step off",
        )


def _check_monitor(spec: dict[str, Any], prefix: str, error: Report) -> None:
    delay, monitor = spec[f"{prefix}_delay"], spec[f"{prefix}_monitor"]
    if (
        spec[f"{prefix}_failure_action"] == FailureAction.ROLLBACK
        and _is_finite(delay)
        and _is_finite(monitor)
        and monitor < delay
    ):
        error(
            f"{prefix}_monitor",
            f"with failure action rollback the monitor ({human_duration(monitor)}) "
            f"must be at least the delay ({human_duration(delay)}), or a failing "
            "batch is noticed only after the next one started",
        )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> TypeGuard[int | float]:
    """A real number: NaN fails every comparison, so it must be refused first."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value == value and abs(value) != float("inf")
