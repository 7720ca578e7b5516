"""The swarm -> the database: import and refresh the stack's services.

Run by the controller every sync interval and by `manage.py rollout` before it
plans or applies; it alone, with rollouts.control.driver, is handed a Docker client.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rollouts.engine.client import SwarmClient
from rollouts.engine.objects import Image, SwarmService, Task
from rollouts.models import KnownImage, Service
from rollouts.records.history import record_live, revision_create
from rollouts.spec.specs import desired_from_spec, is_held, unheld

log = logging.getLogger("rollouts")


def service_sync(*, client: SwarmClient, stack: str | None = None) -> list[Service]:
    """Import or refresh one Service row per swarm service of `stack`.

    New rows take their desired fields from the live spec (revision 1); every
    row gets its live state refreshed; rows whose service vanished are marked
    missing. The engine's image inventory (KnownImage) is refreshed too.
    """
    stack = stack or settings.STACK_NAME
    live = client.list_services(stack)
    tasks: dict[str, list[Task]] = {svc.id: [] for svc in live}
    for task in client.tasks():
        tasks.get(task.service_id, []).append(task)
    nodes = client.node_names()
    images = client.images()
    now = timezone.now()
    with transaction.atomic():
        _record_images(images, now)
        rows = [_import(svc, stack, tasks[svc.id], nodes, now) for svc in live]
        names = [row.name for row in rows]
        gone = Service.objects.filter(stack=stack, missing=False).exclude(
            name__in=names
        )
        for row in gone:
            log.info("%s: no longer in the swarm", row.name)
        gone.update(missing=True)
    return rows


def _record_images(images: list[Image], now: datetime) -> None:
    """The inventory as the engine lists it now, in a few queries whatever
    its size (an engine keeps dozens of tags, and every command syncs): new
    tags inserted, moved tags rewritten, every tag's seen_at moved to `now`,
    tags gone deleted."""
    seen = {image.reference: image for image in images}
    known = {row.reference: row for row in KnownImage.objects.all()}
    moved = [
        row
        for reference, row in known.items()
        if reference in seen
        and (row.image_id, row.digest)
        != (seen[reference].image_id, seen[reference].digest)
    ]
    for row in moved:
        row.image_id, row.digest = (
            seen[row.reference].image_id,
            seen[row.reference].digest,
        )
    if moved:
        KnownImage.objects.bulk_update(moved, ["image_id", "digest"])
    KnownImage.objects.bulk_create(
        [
            KnownImage(
                reference=reference,
                image_id=image.image_id,
                digest=image.digest,
                seen_at=now,
            )
            for reference, image in seen.items()
            if reference not in known
        ]
    )
    KnownImage.objects.filter(reference__in=list(seen)).update(seen_at=now)
    KnownImage.objects.exclude(reference__in=list(seen)).delete()


def _imported_desired(svc: SwarmService) -> dict:
    """The desired fields of a service we have no record of: what runs, except
    a canary's hold (a database wiped or restored while a canary was held):
    the hold is our means, never a policy, so the policy before it is taken
    (the engine's previous spec, else the model's defaults). The controller
    then writes that policy over the hold (control.driver.release_orphaned_holds)."""
    desired = desired_from_spec(svc.spec)
    if not is_held(svc.spec):
        return desired
    if svc.previous_spec and not is_held(svc.previous_spec):
        before = desired_from_spec(svc.previous_spec)
    else:
        before = Service().desired_spec()  # the model's defaults
    log.warning("%s: imported while a canary's hold runs: hold not kept", svc.name)
    return unheld(desired, before)


def _import(
    svc: SwarmService,
    stack: str,
    tasks: list[Task],
    nodes: dict[str, str],
    now: datetime,
) -> Service:
    name = svc.name
    service = Service.objects.filter(name=name).first()
    if service is None:
        prefix = f"{stack}_"
        short = name[len(prefix) :] if name.startswith(prefix) else name
        service = Service(name=name, stack=stack, short_name=short)
        for field, value in _imported_desired(svc).items():
            setattr(service, field, value)
        service.save()
        revision_create(service, None, "imported from the swarm by `rollout sync`")
        log.info("%s: imported (%s:%s)", name, service.image, service.tag)
    record_live(service, svc, tasks, nodes, now)
    return service
