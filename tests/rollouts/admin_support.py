"""Rows the admin, API and browser tests share: a worker service after the
seed's auto-rollback (failed `bugged` attempts under slots 3, 4, 5 and 9),
known images, and staff users with and without the apply permission."""

from datetime import timedelta

from django.contrib.auth.models import Permission
from django.utils import timezone

from rollouts.models import KnownImage, Rollout, RolloutState, Service

FAILED_ATTEMPTS = {"3": 3, "4": 1, "5": 3, "9": 1}  # the seed's table
BUGGED_ERROR = "task: non-zero exit (1)"


def _task(slot: str, n: int, *, tag: str, state: str, desired: str, ago: int) -> dict:
    since = (timezone.now() - timedelta(seconds=ago)).isoformat()
    return {
        "id": f"task{slot}x{n}".ljust(25, "0"),
        "image": f"dockercoins:{tag}",
        "node": "node-0",
        "desired_state": desired,
        "state": state,
        "error": BUGGED_ERROR if state == "failed" else "",
        "message": "started" if state == "running" else "",
        "exit_code": 1 if state == "failed" else 0,
        "since": since,
        "created": since,
    }


def worker_tasks(replicas: int = 10) -> list[dict]:
    """live_tasks as the controller records them: per slot, newest first."""
    groups = []
    for slot in (str(n) for n in range(1, replicas + 1)):
        tasks = [_task(slot, 0, tag="1.0", state="running", desired="running", ago=60)]
        for attempt in range(FAILED_ATTEMPTS.get(slot, 0)):
            tasks.append(
                _task(
                    slot,
                    attempt + 1,
                    tag="bugged",
                    state="failed",
                    desired="shutdown",
                    ago=90 + attempt,
                )
            )
        groups.append({"slot": slot, "tasks": tasks})
    return groups


def make_service(short_name: str = "worker", **fields) -> Service:
    values = {
        "name": f"dockercoins_{short_name}",
        "stack": "dockercoins",
        "short_name": short_name,
        "swarm_id": f"{short_name}id".ljust(25, "0"),
        "image": "dockercoins",
        "tag": "1.0",
        "replicas": 10,
        "live_image": "dockercoins:1.0@sha256:" + "ab" * 32,
        "live_mode": "replicated",
        "live_running": 10,
        "live_desired": 10,
        "live_update_state": "rollback_completed",
        "live_update_message": "rollback completed",
        "live_tasks": worker_tasks(),
        "synced_at": timezone.now(),
        **fields,
    }
    return Service.objects.create(**values)


def known_images(*tags: str, repository: str = "dockercoins") -> None:
    for tag in tags:
        KnownImage.objects.create(
            reference=f"{repository}:{tag}",
            image_id=f"sha256:{tag}".ljust(71, "0"),
            seen_at=timezone.now(),
        )


def make_staff(django_user_model, username: str, *, can_apply: bool):
    # No password: tests log in with force_login, and hashing one costs 0.5 s.
    user = django_user_model.objects.create_user(username=username, is_staff=True)
    if can_apply:
        user.user_permissions.add(Permission.objects.get(codename="apply_rollout"))
    return user


def active_rollout(service: Service, **fields) -> Rollout:
    values = {
        "kind": "apply",
        "state": RolloutState.WATCHING,
        "tasks_done": 3,
        "tasks_total": 10,
        **fields,
    }
    return Rollout.objects.create(service=service, **values)


def form_data(service: Service, **changes) -> dict:
    """The POST body of the Service change form: the current spec plus changes."""
    data = {name: value for name, value in service.desired_spec().items()}
    data["replicas"] = "" if data["replicas"] is None else data["replicas"]
    data["change_cause"] = "test change"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}
