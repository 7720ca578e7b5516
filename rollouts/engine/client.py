"""The one module that talks to Docker: a plain adapter that takes and returns data.

Everything the rest of the app knows about the engine goes through `SwarmClient`,
which parses the engine's answers once into the typed objects of
`rollouts.engine.objects` (SwarmService, Task, Node, Image), writes specs as the
plain Engine API dicts `rollouts.spec.specs` makes, and turns the SDK's
exceptions into `SwarmError`s whose message is one line an operator understands.
It decides nothing: which spec to write, and what to do when a write is out of
sequence, is the driver's (`rollouts.control.driver`).
"""

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import docker
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from rollouts.engine.objects import (
    Image,
    Node,
    SwarmService,
    Task,
    nodes_from_engine,
    tasks_from_engine,
)
from rollouts.records.describe import DOWN_SUFFIX
from rollouts.spec.specs import parse_engine_time

log = logging.getLogger(__name__)

STACK_LABEL = "com.docker.stack.namespace"
SERVICE_ID_LABEL = "com.docker.swarm.service.id"
# The docker SDK release `_post_rollback` was written against (see there).
SDK_VERSION = "7.1.0"


class SwarmError(Exception):
    """Something the engine refused or could not do; str() is one line."""


class SwarmUnreachable(SwarmError):
    """No engine answered: retry later, nothing was decided."""


class ServiceNotFound(SwarmError):
    pass


class NoPreviousSpec(SwarmError):
    pass


class OutOfSequence(SwarmError):
    """The service's version moved since it was read: read it again, then write."""


def _explain(exc: docker.errors.APIError) -> str:
    text = str(exc.explanation or exc).strip().splitlines()[0]
    # "rpc error: code = Unknown desc = update out of sequence" -> the desc.
    return text.split(" desc = ", 1)[-1]


class SwarmClient:
    """A swarm manager's engine, seen through the low-level SDK client."""

    def __init__(self, api: Any = None) -> None:
        """`api`: a docker-py APIClient (or a fake of one); None connects to the
        engine of DOCKER_HOST on first use. A process configured without the
        socket (the webui: settings.DOCKER_ENABLED false) refuses at once."""
        if api is None and not settings.DOCKER_ENABLED:
            raise ImproperlyConfigured(
                f"this process ({settings.ROLE}) has no Docker socket: only the "
                "controller and `manage.py rollout` talk to the engine"
            )
        self._api = api

    @property
    def api(self) -> Any:
        if self._api is None:
            with self._errors("connect"):
                self._api = docker.from_env(timeout=settings.DOCKER_TIMEOUT).api
        return self._api

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except docker.errors.NotFound as exc:
            raise ServiceNotFound(f"{what}: {_explain(exc)}") from exc
        except docker.errors.APIError as exc:
            kind = OutOfSequence if "out of sequence" in _explain(exc) else SwarmError
            raise kind(f"{what}: {_explain(exc)}") from exc
        except (
            requests.exceptions.RequestException,
            docker.errors.DockerException,
        ) as exc:
            where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            raise SwarmUnreachable(f"Docker engine unreachable at {where}") from exc

    # --- reads ----------------------------------------------------------------

    def engine_time(self) -> datetime:
        """The engine's clock now (UpdateStatus and task times are on it)."""
        with self._errors("engine info"):
            moment = parse_engine_time(self.api.info().get("SystemTime"))
        if moment is None:
            raise SwarmError("engine info: no SystemTime in the answer")
        return moment

    def network_names(self) -> dict[str, str]:
        """{network id: name}: a service's spec names its networks by id, and a
        re-deploy gives them new ones (rollouts.engine.objects.meant_spec)."""
        with self._errors("list networks"):
            networks = self.api.networks()
        return {n["Id"]: n["Name"] for n in networks if n.get("Id")}

    def list_services(self, stack: str) -> list[SwarmService]:
        """The stack's services, each with its ServiceStatus (running/desired)."""
        with self._errors(f"list services of stack {stack}"):
            services = self.api.services(
                filters={"label": f"{STACK_LABEL}={stack}"}, status=True
            )
        names = self.network_names() if services else {}
        parsed = [SwarmService.from_engine(s, names) for s in services]
        return sorted(parsed, key=lambda s: s.name)

    def inspect(self, name: str) -> SwarmService:
        """One service with its ServiceStatus; ServiceNotFound when it is gone."""
        with self._errors(f"service {name}"):
            # The name filter matches prefixes; keep the exact one.
            found = [
                s
                for s in self.api.services(filters={"name": name}, status=True)
                if name in (s["Spec"]["Name"], s["ID"])
            ]
            if not found:
                found = self.api.services(filters={"id": name}, status=True)
                found = [s for s in found if s["ID"] == name]
        if not found:
            raise ServiceNotFound(f"service {name} not found")
        return SwarmService.from_engine(found[0], self.network_names())

    def tasks(self, service_id: str | None = None) -> list[Task]:
        """The tasks of one service (of all services without `service_id`)."""
        with self._errors("list tasks"):
            tasks = self.api.tasks()
        # Filtering by a removed service is an error; by ID in Python is not.
        return tasks_from_engine(
            [t for t in tasks if service_id in (None, t.get("ServiceID"))]
        )

    def nodes(self) -> list[Node]:
        """The swarm's nodes, sorted by hostname."""
        with self._errors("list nodes"):
            return nodes_from_engine(self.api.nodes())

    def node_names(self, nodes: list[Node] | None = None) -> dict[str, str]:
        """{node ID: hostname}, "node-2 (down)" for a node that is down, so
        every task table shows where a task was lost."""
        return {
            node.id: f"{node.hostname}{DOWN_SUFFIX}" if node.down else node.hostname
            for node in (self.nodes() if nodes is None else nodes)
        }

    def images(self) -> list[Image]:
        """Every tagged image on this engine, one entry per tag."""
        with self._errors("list images"):
            images = self.api.images()
        return [
            Image.from_engine(image, reference)
            for image in images
            for reference in image.get("RepoTags") or ()
            if reference != "<none>:<none>"
        ]

    def image(self, reference: str) -> Image | None:
        """The local image `reference` names, or None when the engine lacks it."""
        with self._errors(f"image {reference}"):
            try:
                image = self.api.inspect_image(reference)
            except docker.errors.NotFound:
                return None
        return Image.from_engine(image, reference)

    def container_images(self, tasks: list[Task]) -> dict[str, str]:
        """{task id: image id} of the containers of `tasks` that run on this
        engine's node (a container on another node cannot be inspected from
        here: absent from the answer)."""
        found = {}
        for task in tasks:
            if not task.container_id:
                continue
            with self._errors(f"container of task {task.id[:12]}"):
                try:
                    container = self.api.inspect_container(task.container_id)
                except docker.errors.NotFound:
                    continue
            found[task.id] = container.get("Image") or ""
        return found

    # --- writes: each one attempt at the version the service was read with -----

    def update(self, service: SwarmService, spec: dict[str, Any]) -> None:
        """Write `spec` over `service` (as inspected); OutOfSequence when the
        service changed since it was read."""
        with self._errors(f"update service {service.name}"):
            self.api.update_service(
                service.id,
                service.version,
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=spec.get("Labels"),
                mode=spec["Mode"],
                update_config=spec["UpdateConfig"],
                rollback_config=spec["RollbackConfig"],
                endpoint_spec=spec.get("EndpointSpec"),
            )

    def rollback(self, service: SwarmService) -> None:
        """The engine's own rollback to PreviousSpec, under the rollback policy;
        NoPreviousSpec when the engine has none, OutOfSequence as for update."""
        name = service.name
        try:
            with self._errors(f"roll back service {name}"):
                _post_rollback(self.api, service)
        except SwarmError as exc:
            if "previous spec" in str(exc):
                raise NoPreviousSpec(
                    f"service {name} has no previous spec to roll back to (the engine"
                    " drops it after a rollback): undo to a revision instead"
                ) from exc
            raise

    def recreate(
        self, service: SwarmService, spec: dict[str, Any], timeout: float = 60
    ) -> SwarmService:
        """Remove `service` and create `spec` in its place; returns the new service.

        For what cannot change in place (the mode). The old tasks must be gone
        first: their host-mode ports and names are in the way. If the create
        fails, the old spec is created again.
        """
        name = service.name
        with self._errors(f"remove service {name}"):
            self.api.remove_service(service.id)
        self._wait_tasks_gone(service, timeout)
        try:
            return self._create(spec)
        except SwarmError as exc:
            try:
                self._create(service.spec)
            except SwarmError as again:
                raise SwarmError(
                    f"re-creating {name} failed ({exc}) and so did restoring it "
                    f"({again}): the service is gone"
                ) from exc
            raise SwarmError(f"re-creating {name} failed ({exc}); restored it") from exc

    def _wait_tasks_gone(self, service: SwarmService, timeout: float) -> None:
        grace = (service.template.get("ContainerSpec") or {}).get(
            "StopGracePeriod", 10 * 10**9
        )
        deadline = time.monotonic() + timeout + grace / 10**9
        while self.tasks(service.id):
            if time.monotonic() > deadline:
                raise SwarmError(
                    f"the tasks of removed service {service.name} did not stop"
                )
            time.sleep(0.5)

    def _create(self, spec: dict[str, Any]) -> SwarmService:
        name = spec["Name"]
        with self._errors(f"create service {name}"):
            self.api.create_service(
                spec["TaskTemplate"],
                name=name,
                labels=spec.get("Labels"),
                mode=spec["Mode"],
                update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"),
                endpoint_spec=spec.get("EndpointSpec"),
            )
        return self.inspect(name)


def _post_rollback(api: Any, service: SwarmService) -> None:
    """POST /services/{id}/update?rollback=previous, through the SDK's privates.

    Why private: docker-py has no call for the engine's rollback (its
    `update_service` never sends `rollback=previous`), and this is the SDK's own
    request path (auth, API version, error mapping to APIError). Written for
    docker==7.1.0; tests/rollouts/test_swarm_client.py pins that version, so an
    upgrade makes someone look here. The engine ignores the body but requires one.
    """
    response = api._post_json(
        api._url("/services/{0}/update", service.id),
        data=service.spec,
        params={"version": service.version, "rollback": "previous"},
    )
    api._result(response, json=True)
