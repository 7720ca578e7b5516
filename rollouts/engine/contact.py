"""When the engine stops answering a rollout's driver, and when it answers again.

Without these events an operator only sees a lease that ran out; with them, the
rollout's record says when the engine was gone and for how long.
"""

from django.utils import timezone

from rollouts.models import Rollout
from rollouts.records.history import event


def unreachable(rollout: Rollout, why: str) -> None:
    """Record the first failed contact (later ones add nothing)."""
    now = timezone.now()
    if Rollout.objects.filter(pk=rollout.pk, unreachable_since=None).update(
        unreachable_since=now
    ):
        rollout.unreachable_since = now
        event(rollout, "error", f"{why} at {now:%H:%M:%S} UTC; retrying")


def reachable(rollout: Rollout) -> None:
    """Record that the engine answered again, and how long it was gone."""
    since = rollout.unreachable_since
    if since is None:
        return
    now = timezone.now()
    Rollout.objects.filter(pk=rollout.pk).update(unreachable_since=None)
    rollout.unreachable_since = None
    gone = (now - since).total_seconds()
    event(
        rollout,
        "info",
        f"the engine answered again at {now:%H:%M:%S} UTC "
        f"(unreachable since {since:%H:%M:%S}, {gone:.0f}s)",
    )
