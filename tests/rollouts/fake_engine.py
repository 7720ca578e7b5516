"""A fake of docker-py's low-level APIClient with canned, mutable engine state.

In the spirit of docker-py's tests/unit/fake_api_client.py: `SwarmClient(api=
FakeEngine())` runs our real Docker module against it. Tests arrange services,
tasks and UpdateStatus, then assert on what was written (`engine.writes`).
Answers have the Engine API 1.41 shapes (nanosecond durations, RFC 3339 times).
"""

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import docker
import requests

from rollouts.engine.client import STACK_LABEL, SwarmClient
from rollouts.spec.specs import parse_image

NODE = {"ID": "node1", "Description": {"Hostname": "node-0"}}
_ids = itertools.count(1)


def engine_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds


def out_of_sequence() -> docker.errors.APIError:
    return docker.errors.APIError(
        "500 Server Error",
        explanation="rpc error: code = Unknown desc = update out of sequence",
    )


class FakeEngine:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
        self.svcs: dict[str, dict] = {}
        self.task_list: list[dict] = []
        self.image_list: list[dict] = []
        self.writes: list[dict] = []
        # The stack's network as `docker stack deploy` creates it: specs name
        # it by id ("net1"), `GET /networks` says its name.
        self.network_list: list[dict] = [{"Id": "net1", "Name": "dockercoins_default"}]
        self.containers: dict[str, str] = {}  # container id -> image id
        self.update_errors: list[Exception] = []  # raised by the next updates
        self.create_errors: list[Exception] = []
        self.down = False
        self.on_write = None  # callback(engine, service) after a successful write

    # --- arranging ---------------------------------------------------------------

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)

    def client(self) -> SwarmClient:
        return SwarmClient(api=self)

    def add_image(self, reference: str, digest: str = "") -> None:
        repo = reference.rsplit(":", 1)[0]
        self.image_list.append(
            {
                "Id": "sha256:" + f"{abs(hash(reference)):x}".ljust(64, "0"),
                "RepoTags": [reference],
                "RepoDigests": [f"{repo}@{digest}"] if digest else [],
            }
        )

    def add_service(
        self,
        name: str,
        image: str = "dockercoins:1.0",
        *,
        replicas: int | None = 1,
        stack: str = "dockercoins",
        update_config: dict | None = None,
        running: bool = True,
    ) -> dict:
        mode = (
            {"Global": {}}
            if replicas is None
            else {"Replicated": {"Replicas": replicas}}
        )
        spec = {
            "Name": name,
            "Labels": {STACK_LABEL: stack},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": image,
                    "Args": [name.split("_")[-1]],
                    "Env": ["REDIS_URL=redis://redis:6379/0"],
                },
                "Networks": [{"Target": "net1", "Aliases": [name.split("_")[-1]]}],
                "ForceUpdate": 0,
            },
            "Mode": mode,
            "EndpointSpec": {
                "Mode": "dnsrr",
                "Ports": [
                    {"TargetPort": 80, "PublishedPort": 8001, "PublishMode": "host"}
                ],
            },
        }
        if update_config is not None:
            spec["UpdateConfig"] = update_config
        service: dict[str, Any] = {
            "ID": f"svc{next(_ids)}".ljust(25, "x"),
            "Version": {"Index": 10},
            "UpdatedAt": engine_time(self.now),
            "Spec": spec,
        }
        self.svcs[service["ID"]] = service
        if running:
            for slot in range(1, (replicas or 1) + 1):
                self.add_task(
                    service, slot, "running", created=self.now - timedelta(hours=1)
                )
        return service

    def add_task(
        self,
        service: dict,
        slot: int | None,
        state: str,
        *,
        image: str | None = None,
        desired: str = "running",
        err: str = "",
        created: datetime | None = None,
        exit_code: int | None = None,
    ) -> dict:
        template = copy.deepcopy(service["Spec"]["TaskTemplate"])
        if image:
            template["ContainerSpec"]["Image"] = image
        task = {
            "ID": f"task{next(_ids)}".ljust(25, "t"),
            "ServiceID": service["ID"],
            "Slot": slot,
            "NodeID": "node1",
            "CreatedAt": engine_time(created or self.now),
            "Spec": template,
            "DesiredState": desired,
            "Status": {"State": state, "Timestamp": engine_time(self.now), "Err": err},
        }
        if exit_code is not None:
            task["Status"]["ContainerStatus"] = {"ExitCode": exit_code}
        self.task_list.append(task)
        return task

    def replace_tasks(self, service: dict, state: str = "running", **kwargs) -> None:
        """Every current task shut down and replaced by one on the current spec."""
        for task in self.task_list:
            if task["ServiceID"] == service["ID"] and task["DesiredState"] == "running":
                task["DesiredState"] = "shutdown"
                task["Status"]["State"] = "shutdown"
        replicas = service["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 1)
        for slot in range(1, replicas + 1):
            self.add_task(service, slot, state, **kwargs)

    def set_update(self, service: dict, state: str, message: str = "", started=None):
        service["UpdateStatus"] = {
            "State": state,
            "StartedAt": engine_time(started or self.now),
            "Message": message,
        }

    def set_state(self, task: dict, state: str, exit_code: int | None = None) -> None:
        """A task moves on, at the engine's current time."""
        task["Status"]["State"] = state
        task["Status"]["Timestamp"] = engine_time(self.now)
        if exit_code is not None:
            task["Status"]["ContainerStatus"] = {"ExitCode": exit_code}
        if state not in ("running", "starting", "pending"):
            task["DesiredState"] = "shutdown"

    def outside_update(self, name: str, **template) -> dict:
        """`docker service update` by someone else: the spec changes, PreviousSpec
        keeps ours."""
        service = self.service(name)
        service["PreviousSpec"] = copy.deepcopy(service["Spec"])
        service["Spec"]["TaskTemplate"]["ContainerSpec"].update(template)
        self._written(service)
        return service

    def service(self, name: str) -> dict:
        return next(s for s in self.svcs.values() if s["Spec"]["Name"] == name)

    # --- the APIClient surface SwarmClient uses -------------------------------------

    def _check(self) -> None:
        if self.down:
            raise requests.exceptions.ConnectionError("connection refused")

    def info(self) -> dict:
        self._check()
        return {
            "SystemTime": engine_time(self.now),
            "Swarm": {"LocalNodeState": "active"},
        }

    def services(self, filters=None, status=None) -> list[dict]:
        self._check()
        found = []
        for service in self.svcs.values():
            spec = service["Spec"]
            if "label" in filters:
                key, _, value = filters["label"].partition("=")
                if spec["Labels"].get(key) != value:
                    continue
            if "name" in filters and not spec["Name"].startswith(filters["name"]):
                continue
            if "id" in filters and not service["ID"].startswith(filters["id"]):
                continue
            found.append(self._with_status(service))
        return found

    def _with_status(self, service: dict) -> dict:
        service = copy.deepcopy(service)
        mode = service["Spec"]["Mode"]
        tasks = [t for t in self.task_list if t["ServiceID"] == service["ID"]]
        service["ServiceStatus"] = {
            "RunningTasks": sum(
                t["Status"]["State"] == "running" and t["DesiredState"] == "running"
                for t in tasks
            ),
            "DesiredTasks": 1 if "Global" in mode else mode["Replicated"]["Replicas"],
        }
        return service

    def tasks(self, filters=None) -> list[dict]:
        self._check()
        return copy.deepcopy(self.task_list)

    def nodes(self) -> list[dict]:
        self._check()
        return [NODE]

    def networks(self) -> list[dict]:
        self._check()
        return copy.deepcopy(self.network_list)

    def inspect_container(self, container_id: str) -> dict:
        self._check()
        if container_id not in self.containers:
            raise docker.errors.NotFound(
                "404", explanation=f"No such container: {container_id}"
            )
        return {"Id": container_id, "Image": self.containers[container_id]}

    def images(self) -> list[dict]:
        self._check()
        return copy.deepcopy(self.image_list)

    def inspect_image(self, reference: str) -> dict:
        self._check()
        if parse_image(reference) is None:  # as the engine answers it
            raise docker.errors.APIError(
                "400 Client Error", explanation="invalid reference format"
            )
        for image in self.image_list:
            if reference in image["RepoTags"]:
                return copy.deepcopy(image)
        raise docker.errors.ImageNotFound(
            "404", explanation=f"No such image: {reference}"
        )

    def update_service(self, service_id, version, **spec) -> dict:
        self._check()
        self.writes.append(
            {"op": "update", "id": service_id, "version": version, **spec}
        )
        if self.update_errors:
            raise self.update_errors.pop(0)
        service = self.svcs[service_id]
        if version != service["Version"]["Index"]:
            raise out_of_sequence()
        service["PreviousSpec"] = service["Spec"]
        service["Spec"] = {
            "Name": spec["name"],
            "Labels": spec["labels"],
            "TaskTemplate": spec["task_template"],
            "Mode": spec["mode"],
            "UpdateConfig": spec["update_config"],
            "RollbackConfig": spec["rollback_config"],
            "EndpointSpec": spec["endpoint_spec"],
        }
        self._written(service)
        return {"Warnings": None}

    def _written(self, service: dict) -> None:
        service["Version"]["Index"] += 1
        service["UpdatedAt"] = engine_time(self.now)
        if self.on_write:
            self.on_write(self, service)

    def _url(self, path: str, *args) -> str:
        return path.format(*args)

    def _post_json(self, url: str, data=None, params=None):
        self._check()
        service_id = url.split("/")[2]
        self.writes.append({"op": "post", "url": url, "params": params, "data": data})
        service = self.svcs[service_id]
        if params.get("version") != service["Version"]["Index"]:
            raise out_of_sequence()
        if params.get("rollback") == "previous":
            if "PreviousSpec" not in service:
                raise docker.errors.APIError(
                    "400 Client Error",
                    explanation="rpc error: code = FailedPrecondition desc = service "
                    f"{service_id} does not have a previous spec",
                )
            service["Spec"] = service.pop("PreviousSpec")
            self._written(service)
        return {"Warnings": None}

    def _result(self, response, json=False):
        return response

    def remove_service(self, service_id: str) -> bool:
        self._check()
        self.writes.append({"op": "remove", "id": service_id})
        if service_id not in self.svcs:
            raise docker.errors.NotFound(
                "404", explanation=f"service {service_id} not found"
            )
        del self.svcs[service_id]
        self.task_list = [t for t in self.task_list if t["ServiceID"] != service_id]
        return True

    def create_service(self, task_template, name=None, labels=None, mode=None, **kw):
        self._check()
        self.writes.append(
            {
                "op": "create",
                "task_template": task_template,
                "name": name,
                "labels": labels,
                "mode": mode,
                **kw,
            }
        )
        if self.create_errors:
            raise self.create_errors.pop(0)
        service = {
            "ID": f"svc{next(_ids)}".ljust(25, "x"),
            "Version": {"Index": 1},
            "Spec": {
                "Name": name,
                "Labels": labels,
                "TaskTemplate": task_template,
                "Mode": mode,
                "UpdateConfig": kw.get("update_config"),
                "RollbackConfig": kw.get("rollback_config"),
                "EndpointSpec": kw.get("endpoint_spec"),
            },
        }
        self.svcs[service["ID"]] = service
        if self.on_write:
            self.on_write(self, service)
        return {"ID": service["ID"]}
