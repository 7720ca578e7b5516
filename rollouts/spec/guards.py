"""Requests the engine would take in a way the operator did not mean.

- A paused failed update (UpdateStatus "paused") is resumed by the engine at
  the next write to the service, with the paused spec: a scale re-sends the
  bugged image and shuts down more healthy tasks (swarmkit's updater restarts
  on any spec change). Such a change is refused unless the operator chose to
  resume; rolling back, undoing or replacing the image are the other ways out.
- UpdateConfig.Monitor 0 means "the engine's default" (5 s): stored as 5 s so
  that `plan` and the engine agree.
"""

from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from rollouts.spec.fields import DEFAULT_MONITOR
from rollouts.spec.specs import short_image

if TYPE_CHECKING:  # the type only: spec/ never imports the models at run time
    from rollouts.models import Service

PAUSED_STATES = ("paused", "rollback_paused")


def normalize_monitors(desired: dict[str, Any]) -> dict[str, Any]:
    """`desired` with a monitor of 0 replaced by the engine's meaning of it."""
    fixed = dict(desired)
    for field in ("update_monitor", "rollback_monitor"):
        if fixed.get(field) == 0:
            fixed[field] = DEFAULT_MONITOR
    return fixed


def refuse_resuming_a_paused_update(
    service: "Service", spec: dict[str, Any], resume_confirmed: bool
) -> None:
    """ValidationError when the live spec is a paused failed update and `spec`
    (the full desired spec to be written) would resume it: same image."""
    if resume_confirmed or service.live_update_state not in PAUSED_STATES:
        return
    live = short_image(service.live_image)
    if f"{spec['image']}:{spec['tag']}" != live:
        return  # a replacement: the new image ends the paused update
    raise ValidationError(
        {
            NON_FIELD_ERRORS: f"{service.name} runs a paused failed update of "
            f"{live} ({service.live_update_message or service.live_update_state}); "
            "this change would resume it: roll back (`rollout rollback`), undo, "
            "change the image, or resume on purpose (--resume)"
        }
    )
