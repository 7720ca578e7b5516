"""Where the engine's rollback would go, judged by our own revision history.

Swarmkit keeps one previous spec per service (PreviousSpec), and every update
overwrites it, even one that changes nothing (`docker service update -d worker`),
an outside one, or the engine's own rollback. So a rollback goes where the
engine's memory says, which is not always where the operator means: the
revision before the one that runs (rollouts.records.selectors.revision_undo_target).
`rollback_refusal` says, in one line, when the two differ, or when the
rollback would change nothing, and offers the `undo` that goes where meant.
"""

from rollouts.engine.objects import SwarmService
from rollouts.models import Revision, Service
from rollouts.records.selectors import revision_undo_target
from rollouts.spec.drift import spec_differences
from rollouts.spec.specs import desired_from_spec, is_held, spec_diff


def _image(fields: dict) -> str:
    return f"{fields['image']}:{fields['tag']}"


def _undo_hint(service: Service, target: Revision | None) -> str:
    if target is None:
        return "there is no earlier revision of ours to undo to"
    return (
        f"`rollout undo {service.short_name}` puts back revision "
        f"{target.number} ({_image(target.spec)})"
    )


def held_refusal(service: Service, live: SwarmService) -> str:
    """Why not to ask the engine for its rollback when its previous spec is a
    canary's hold: the spec a promotion wrote over, or the canary the engine
    rolled back (its rollback swaps the two specs). The rollback would put
    that version back, held. "" otherwise."""
    if not live.previous_spec or not is_held(live.previous_spec):
        return ""
    previous = desired_from_spec(live.previous_spec)
    return (
        f"the engine's previous spec of {service.name} is a canary's hold "
        f"({_image(previous)} held after its canary batch): a rollback would put "
        f"that version back, held; "
        f"{_undo_hint(service, revision_undo_target(service=service))}"
    )


def rollback_refusal(service: Service, live: SwarmService) -> str:
    """ "" when the engine's rollback goes to the revision before the current
    one (or the engine has no previous spec: it says so itself); else why not,
    in one line, naming what runs and the undo that goes where meant."""
    if not live.previous_spec:
        return ""
    held = held_refusal(service, live)
    if held:
        return f"rollback refused: {held}"
    runs = desired_from_spec(live.spec)
    previous = desired_from_spec(live.previous_spec)
    target = revision_undo_target(service=service)
    hint = _undo_hint(service, target)
    meant_previous = live.meant_previous_spec or {}
    if not spec_differences(meant_previous, live.meant_spec):
        return (
            f"rollback refused: {service.name} runs {_image(runs)} and the engine's "
            "previous spec is the same (an update since, even one that changed "
            f"nothing, overwrote it): a rollback would change nothing; {hint}"
        )
    if target is not None and spec_diff(previous, target.spec):
        what = "; ".join(f"{k} {old}" for k, old, _ in spec_diff(previous, target.spec))
        return (
            f"rollback refused: {service.name} runs {_image(runs)}; the engine's "
            f"previous spec ({what}) is not revision {target.number}, the one "
            f"before it (written outside, or swapped by an earlier rollback); {hint}"
        )
    return ""


def rollback_destination(service: Service, live: SwarmService) -> str:
    """For `rollout plan`: where a rollback would go, or why it is refused."""
    if not live.previous_spec:
        target = revision_undo_target(service=service)
        return (
            "rollback: the engine keeps no previous spec of this service; "
            + _undo_hint(service, target)
        )
    refusal = rollback_refusal(service, live)
    if refusal:
        return refusal.replace("rollback refused", "rollback would be refused", 1)
    previous = desired_from_spec(live.previous_spec)
    target = revision_undo_target(service=service)
    number = f"revision {target.number}, " if target else ""
    return f"rollback: goes to {number}{_image(previous)}"
