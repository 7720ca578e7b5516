"""Reads shared by the admin, the API and `manage.py rollout`."""

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from rollouts.models import ACTIVE_STATES, Revision, Rollout, RolloutState, Service
from rollouts.spec.specs import spec_diff


def service_get(*, name: str, stack: str | None = None) -> Service:
    """The service called `name`: its swarm name (dockercoins_worker) or its short
    name within the stack (worker). Raises Service.DoesNotExist with a message
    naming the services that do exist.
    """
    stack = stack or settings.STACK_NAME
    found = (
        Service.objects.filter(name=name).first()
        or Service.objects.filter(stack=stack, short_name=name).first()
        or Service.objects.filter(name=f"{stack}_{name}").first()
    )
    if found is None:
        known = Service.objects.filter(stack=stack).values_list("short_name", flat=True)
        hint = f"known: {', '.join(known)}" if known else "none known yet"
        raise Service.DoesNotExist(
            f"no service {name!r} in stack {stack} ({hint}; `rollout sync` imports "
            "the stack's services)"
        )
    return found


def service_list(*, stack: str | None = None) -> QuerySet[Service]:
    return Service.objects.filter(stack=stack or settings.STACK_NAME)


def rollout_active_for(*, service: Service) -> Rollout | None:
    """The queued, applying or watching rollout of `service`, if any."""
    return (
        service.rollouts.filter(state__in=ACTIVE_STATES)
        .order_by("requested_at")
        .first()
    )


def revision_latest(*, service: Service) -> Revision | None:
    return service.revisions.order_by("-number").first()


def _ran(service: Service) -> QuerySet[Revision]:
    """The revisions the swarm ran: one a rollout completed, or one that was
    never rolled out (imported from the swarm, adopted)."""
    rollouts = Rollout.objects.filter(revision=OuterRef("pk"))
    completed = rollouts.filter(state=RolloutState.COMPLETED)
    return service.revisions.filter(Exists(completed) | ~Exists(rollouts))


def revision_current(*, service: Service) -> Revision | None:
    """The newest revision the swarm runs: one a rollout completed, or one that
    was never rolled out (imported from the swarm)."""
    return _ran(service).order_by("-number").first()


def revision_undo_target(*, service: Service) -> Revision | None:
    """Where `undo` (and a rollback) goes: the revision before the current one
    (the newest that completed), like `kubectl rollout undo`; when the latest
    change never completed (aborted, failed, paused, superseded), back to what
    last completed. A release that never ran (rolled back by the engine or by
    its analysis) is never a target, and neither is a revision with the very
    spec that runs (kubectl shares one revision between identical templates).
    None when there is no such revision."""
    revisions = service.revisions.order_by("-number")
    current = revision_current(service=service)
    latest = revisions.first()
    if (
        current is not None
        and latest is not None
        and latest != current
        and not latest.rollouts.filter(state=RolloutState.ROLLED_BACK).exists()
    ):
        return current
    if current is None:
        return None
    earlier = _ran(service).filter(number__lt=current.number).order_by("-number")
    for candidate in earlier:
        if spec_diff(candidate.spec, current.spec):
            return candidate
    return None
