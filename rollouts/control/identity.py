"""Which build the tasks run: a tag names an image only at the moment it is
resolved.

The engine resolves a spec's tag when it creates a task's container, on that
task's node, and never again. Rebuild `dockercoins:1.1` and the spec still says
`dockercoins:1.1`: writing it again changes nothing, no task is replaced, and
every container keeps the old build. So an apply compares the image id the tag
names now with the image id of the containers (on this engine's node: those on
other nodes cannot be inspected from here) and, when they differ, bumps the
template's ForceUpdate, which makes the engine re-create every task, each one
resolving the tag again. A rollout is done only when its tasks run the image
its revision names, by id.
"""

import copy
from typing import Any

from rollouts.engine.client import SwarmClient
from rollouts.engine.objects import Image, SwarmService, Task


def other_builds(client: SwarmClient, tasks: list[Task], image_id: str) -> list[str]:
    """The short ids of the images that running tasks of `tasks` run other
    than `image_id`, one per task (only tasks on this engine's node are seen)."""
    running = [t for t in tasks if t.should_run and t.running]
    seen = client.container_images(running)
    return [found[7:19] for found in seen.values() if found and found != image_id]


def rebuilt(
    client: SwarmClient, live: SwarmService, tasks: list[Task], image: Image
) -> str:
    """Why the tasks must be re-created although the spec names the same tag
    (the tag was rebuilt since they started); "" when they run `image`."""
    if live.short_image != image.reference or "@" in live.image:
        return ""  # another tag, or a pinned digest: the spec itself changes
    stale = other_builds(client, tasks, image.image_id)
    if not stale:
        return ""
    return (
        f"{image.reference} now names image {image.image_id[7:19]}, but "
        f"{len(stale)} task(s) run image {', '.join(sorted(set(stale)))} (the tag "
        "was rebuilt): forcing an update (ForceUpdate) so the engine re-creates "
        "every task and each node resolves the tag again"
    )


def forced(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of `spec` whose tasks the engine re-creates even if nothing else
    changed (swarmkit compares ForceUpdate like any other template field)."""
    new = copy.deepcopy(spec)
    template = new["TaskTemplate"]
    template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
    return new
