"""The one module that talks to Docker.

Everything the rest of the app knows about the engine goes through `SwarmClient`,
which speaks plain Engine API dicts (see `rollouts.specs`) and turns the SDK's
exceptions into `SwarmError`s whose message is one line an operator understands.
"""

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import docker
import requests
from django.conf import settings

from rollouts.nodes import DOWN_STATES, DOWN_SUFFIX
from rollouts.specs import parse_engine_time

log = logging.getLogger(__name__)

STACK_LABEL = "com.docker.stack.namespace"
SERVICE_ID_LABEL = "com.docker.swarm.service.id"
WRITE_ATTEMPTS = 5


class SwarmError(Exception):
    """Something the engine refused or could not do; str() is one line."""


class SwarmUnreachable(SwarmError):
    """No engine answered: retry later, nothing was decided."""


class ServiceNotFound(SwarmError):
    pass


class NoPreviousSpec(SwarmError):
    pass


def _explain(exc: docker.errors.APIError) -> str:
    text = str(exc.explanation or exc).strip().splitlines()[0]
    # "rpc error: code = Unknown desc = update out of sequence" -> the desc.
    return text.split(" desc = ", 1)[-1]


def _out_of_sequence(exc: Exception) -> bool:
    return isinstance(exc, docker.errors.APIError) and "out of sequence" in _explain(
        exc
    )


class SwarmClient:
    """A swarm manager's engine, seen through the low-level SDK client."""

    def __init__(self, api=None) -> None:
        self._api = api

    @property
    def api(self):
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
            raise SwarmError(f"{what}: {_explain(exc)}") from exc
        except (
            requests.exceptions.RequestException,
            docker.errors.DockerException,
        ) as exc:
            where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            raise SwarmUnreachable(f"Docker engine unreachable at {where}") from exc

    # --- reads ----------------------------------------------------------------

    def engine_time(self) -> datetime:
        with self._errors("engine info"):
            return parse_engine_time(self.api.info()["SystemTime"])

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
        return found[0]

    def tasks(self, service_id: str | None = None) -> list[dict]:
        """The tasks of one service (of all services without `service_id`)."""
        with self._errors("list tasks"):
            tasks = self.api.tasks()
        # Filtering by a removed service is an error; by ID in Python is not.
        return [t for t in tasks if service_id in (None, t.get("ServiceID"))]

    def nodes(self) -> list[dict]:
        """The swarm's nodes as the Engine API gives them (rollouts.nodes
        reads them: which are down)."""
        with self._errors("list nodes"):
            return self.api.nodes()

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

    # --- writes ---------------------------------------------------------------

    def update(self, name: str, change: Callable[[dict], dict]) -> dict:
        """Write `change(current spec)`; returns the service as read before it.

        The service is re-read before every attempt: its version moves during a
        rollout and other tools write too, so "update out of sequence" is retried.
        """

        def write(service: dict) -> None:
            spec = change(service["Spec"])
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

        return self._write(name, f"update service {name}", write)

    def rollback(self, name: str) -> dict:
        """The engine's own rollback to PreviousSpec, under the rollback policy.

        The SDK has no call for it: it is POST /services/{id}/update with
        rollback=previous (the body is ignored by the engine but required).
        """

        def write(service: dict) -> None:
            api = self.api
            response = api._post_json(
                api._url("/services/{0}/update", service["ID"]),
                data=service["Spec"],
                params={"version": service["Version"]["Index"], "rollback": "previous"},
            )
            api._result(response, json=True)

        try:
            return self._write(name, f"roll back service {name}", write)
        except SwarmError as exc:
            if "previous spec" in str(exc):
                raise NoPreviousSpec(
                    f"service {name} has no previous spec to roll back to (the engine"
                    " drops it after a rollback): undo to a revision instead"
                ) from exc
            raise

    def _write(self, name: str, what: str, write: Callable[[dict], None]) -> dict:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            service = self.inspect(name)
            with self._errors(what):
                try:
                    write(service)
                    return service
                except docker.errors.APIError as exc:
                    if not _out_of_sequence(exc) or attempt == WRITE_ATTEMPTS:
                        raise
            log.info("%s: update out of sequence, re-reading (%d)", what, attempt)
            time.sleep(0.1 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def recreate(
        self, name: str, change: Callable[[dict], dict], timeout: float = 60
    ) -> dict:
        """Remove the service and create it again from `change(its spec)`.

        For what cannot change in place (the mode). The old tasks must be gone
        first: their host-mode ports and names are in the way. Returns the new
        service. If the create fails, the old spec is created again.
        """
        old = self.inspect(name)
        spec = change(old["Spec"])
        with self._errors(f"remove service {name}"):
            self.api.remove_service(old["ID"])
        self._wait_tasks_gone(old, timeout)
        try:
            return self._create(spec)
        except SwarmError as exc:
            try:
                self._create(old["Spec"])
            except SwarmError as again:
                raise SwarmError(
                    f"re-creating {name} failed ({exc}) and so did restoring it "
                    f"({again}): the service is gone"
                ) from exc
            raise SwarmError(f"re-creating {name} failed ({exc}); restored it") from exc

    def _wait_tasks_gone(self, service: dict, timeout: float) -> None:
        grace = (service["Spec"]["TaskTemplate"].get("ContainerSpec") or {}).get(
            "StopGracePeriod", 10 * 10**9
        )
        deadline = time.monotonic() + timeout + grace / 10**9
        name = service["Spec"]["Name"]
        while self.tasks(service["ID"]):
            if time.monotonic() > deadline:
                raise SwarmError(f"the tasks of removed service {name} did not stop")
            time.sleep(0.5)

    def _create(self, spec: dict) -> dict:
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


def _digest_for(reference: str, repo_digests: list[str] | None) -> str:
    """`repo:tag@sha256:...` when the image came from a registry, else ""."""
    repo = reference.rsplit(":", 1)[0] if ":" in reference.split("/")[-1] else reference
    for entry in repo_digests or ():
        entry_repo, _, digest = entry.partition("@")
        if entry_repo == repo and digest:
            return f"{reference}@{digest}"
    return ""
