"""The one module that talks to Docker: a plain adapter that takes and returns data.

Everything the rest of the app knows about the engine goes through `SwarmClient`,
which speaks plain Engine API dicts (see `rollouts.spec.specs`) and turns the SDK's
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

from rollouts.engine.nodes import DOWN_STATES
from rollouts.records.describe import DOWN_SUFFIX
from rollouts.spec.specs import parse_engine_time

log = logging.getLogger(__name__)

STACK_LABEL = "com.docker.stack.namespace"
SERVICE_ID_LABEL = "com.docker.swarm.service.id"
# The docker SDK release `_post_rollback` was written against (see there).
SDK_VERSION = "7.1.0"

Service = dict[str, Any]  # an Engine API service: ID, Version, Spec, ...


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

    def list_services(self, stack: str) -> list[dict]:
        """The stack's services, each with its ServiceStatus (running/desired)."""
        with self._errors(f"list services of stack {stack}"):
            services = self.api.services(
                filters={"label": f"{STACK_LABEL}={stack}"}, status=True
            )
        return sorted(services, key=lambda s: s["Spec"]["Name"])

    def inspect(self, name: str) -> dict:
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
        service: Service = found[0]
        return service

    def tasks(self, service_id: str | None = None) -> list[dict]:
        """The tasks of one service (of all services without `service_id`)."""
        with self._errors("list tasks"):
            tasks = self.api.tasks()
        # Filtering by a removed service is an error; by ID in Python is not.
        return [t for t in tasks if service_id in (None, t.get("ServiceID"))]

    def nodes(self) -> list[dict]:
        """The swarm's nodes as the Engine API gives them (rollouts.engine.nodes
        reads them: which are down)."""
        with self._errors("list nodes"):
            nodes: list[dict] = self.api.nodes()
        return nodes

    def node_names(self) -> dict[str, str]:
        """{node ID: hostname}, "node-2 (down)" for a node that is down, so
        every task table shows where a task was lost."""
        names = {}
        for node in self.nodes():
            name = node.get("Description", {}).get("Hostname", node["ID"])
            down = (node.get("Status") or {}).get("State") in DOWN_STATES
            names[node["ID"]] = f"{name}{DOWN_SUFFIX}" if down else name
        return names

    def images(self) -> list[dict]:
        """[{"reference": "repo:tag", "image_id", "digest"}] for every tagged image."""
        with self._errors("list images"):
            images = self.api.images()
        found = []
        for image in images:
            for reference in image.get("RepoTags") or ():
                if reference == "<none>:<none>":
                    continue
                found.append(
                    {
                        "reference": reference,
                        "image_id": image["Id"],
                        "digest": _digest_for(reference, image.get("RepoDigests")),
                    }
                )
        return found

    def image(self, reference: str) -> dict | None:
        """The local image `reference` names, or None when the engine lacks it."""
        with self._errors(f"image {reference}"):
            try:
                image = self.api.inspect_image(reference)
            except docker.errors.NotFound:
                return None
        return {
            "reference": reference,
            "image_id": image["Id"],
            "digest": _digest_for(reference, image.get("RepoDigests")),
        }

    # --- writes: each one attempt at the version the service was read with -----

    def update(self, service: Service, spec: dict[str, Any]) -> None:
        """Write `spec` over `service` (as inspected); OutOfSequence when the
        service changed since it was read."""
        name = service["Spec"]["Name"]
        with self._errors(f"update service {name}"):
            self.api.update_service(
                service["ID"],
                service["Version"]["Index"],
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=spec.get("Labels"),
                mode=spec["Mode"],
                update_config=spec["UpdateConfig"],
                rollback_config=spec["RollbackConfig"],
                endpoint_spec=spec.get("EndpointSpec"),
            )

    def rollback(self, service: Service) -> None:
        """The engine's own rollback to PreviousSpec, under the rollback policy;
        NoPreviousSpec when the engine has none, OutOfSequence as for update."""
        name = service["Spec"]["Name"]
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
        self, service: Service, spec: dict[str, Any], timeout: float = 60
    ) -> Service:
        """Remove `service` and create `spec` in its place; returns the new service.

        For what cannot change in place (the mode). The old tasks must be gone
        first: their host-mode ports and names are in the way. If the create
        fails, the old spec is created again.
        """
        name = service["Spec"]["Name"]
        with self._errors(f"remove service {name}"):
            self.api.remove_service(service["ID"])
        self._wait_tasks_gone(service, timeout)
        try:
            return self._create(spec)
        except SwarmError as exc:
            try:
                self._create(service["Spec"])
            except SwarmError as again:
                raise SwarmError(
                    f"re-creating {name} failed ({exc}) and so did restoring it "
                    f"({again}): the service is gone"
                ) from exc
            raise SwarmError(f"re-creating {name} failed ({exc}); restored it") from exc

    def _wait_tasks_gone(self, service: Service, timeout: float) -> None:
        grace = (service["Spec"]["TaskTemplate"].get("ContainerSpec") or {}).get(
            "StopGracePeriod", 10 * 10**9
        )
        deadline = time.monotonic() + timeout + grace / 10**9
        name = service["Spec"]["Name"]
        while self.tasks(service["ID"]):
            if time.monotonic() > deadline:
                raise SwarmError(f"the tasks of removed service {name} did not stop")
            time.sleep(0.5)

    def _create(self, spec: dict[str, Any]) -> Service:
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


def _post_rollback(api: Any, service: Service) -> None:
    """POST /services/{id}/update?rollback=previous, through the SDK's privates.

    Why private: docker-py has no call for the engine's rollback (its
    `update_service` never sends `rollback=previous`), and this is the SDK's own
    request path (auth, API version, error mapping to APIError). Written for
    docker==7.1.0; tests/rollouts/test_swarm_client.py pins that version, so an
    upgrade makes someone look here. The engine ignores the body but requires one.
    """
    response = api._post_json(
        api._url("/services/{0}/update", service["ID"]),
        data=service["Spec"],
        params={"version": service["Version"]["Index"], "rollback": "previous"},
    )
    api._result(response, json=True)


def _digest_for(reference: str, repo_digests: list[str] | None) -> str:
    """`repo:tag@sha256:...` when the image came from a registry, else ""."""
    repo = reference.rsplit(":", 1)[0] if ":" in reference.split("/")[-1] else reference
    for entry in repo_digests or ():
        entry_repo, _, digest = entry.partition("@")
        if entry_repo == repo and digest:
            return f"{reference}@{digest}"
    return ""
