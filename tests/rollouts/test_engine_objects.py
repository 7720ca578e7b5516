"""The engine's JSON parsed once (rollouts.engine.objects): every part above
the adapter reads these objects, never the raw answer."""

from datetime import UTC, datetime

from rollouts.engine.objects import Node, SwarmService, Task, UpdateStatus
from rollouts.spec.specs import meant_spec, parse_engine_time
from tests.rollouts.fake_engine import FakeEngine


def test_a_service_is_read_once_with_its_mode_image_and_update_status():
    engine = FakeEngine()
    raw = engine.add_service("dc_worker", "dc:1.1@sha256:" + "a" * 64, replicas=3)
    engine.set_update(raw, "updating", "update in progress")

    service = engine.client().inspect("dc_worker")

    assert (service.mode, service.replicas, service.is_global) == (
        "replicated",
        3,
        False,
    )
    assert service.short_image == "dc:1.1"
    assert service.update == UpdateStatus(
        state="updating",
        message="update in progress",
        started_at=engine.now.replace(microsecond=0),
    )
    assert service.desired_tasks == 3
    assert service.network_names == {"net1": "dockercoins_default"}


def test_a_global_service_has_no_replica_count():
    service = SwarmService.from_engine(
        {
            "ID": "s1",
            "Spec": {"Name": "rng", "Mode": {"Global": {}}, "TaskTemplate": {}},
        }
    )
    assert (service.mode, service.replicas) == ("global", None)
    assert service.update is None and service.desired_tasks is None


def test_a_task_the_scheduler_cannot_place_carries_the_engines_reason():
    task = Task.from_engine(
        {
            "ID": "t1",
            "ServiceID": "s1",
            "Slot": 2,
            "DesiredState": "running",
            "CreatedAt": "2026-01-01T12:00:00.123456789Z",
            "Spec": {"ContainerSpec": {"Image": "dc:1.0"}},
            "Status": {
                "State": "pending",
                "Err": "no suitable node (max replicas per node limit exceed)",
                "Timestamp": "2026-01-01T12:00:01Z",
            },
        }
    )
    assert task.unplaced and not task.running and task.should_run
    assert (task.slot, task.node_id, task.exit_code) == (2, "", None)
    assert task.created_at == datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_node_knows_when_it_is_down():
    node = Node.from_engine(
        {
            "ID": "n2",
            "Description": {"Hostname": "node-2"},
            "Status": {"State": "down", "Addr": "10.213.0.12"},
            "Spec": {"Role": "worker", "Availability": "active"},
        }
    )
    assert node.down
    assert node.describe() == "node-2 (10.213.0.12, worker)"


def test_a_zero_engine_time_means_never():
    assert parse_engine_time("0001-01-01T00:00:00Z") is None


def test_a_spec_is_kept_as_meant_without_the_ids_the_engine_assigns():
    spec = {
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "dc:1.0",
                "Secrets": [
                    {"SecretID": "s1", "SecretName": "pg", "File": {"Name": "pg"}}
                ],
            },
            "Networks": [{"Target": "net1", "Aliases": ["worker"]}],
        }
    }
    meant = meant_spec(spec, {"net1": "dc_default"})
    template = meant["TaskTemplate"]
    assert template["Networks"] == [{"Target": "dc_default", "Aliases": ["worker"]}]
    assert template["ContainerSpec"]["Secrets"] == [
        {"SecretName": "pg", "File": {"Name": "pg"}}
    ]
    assert spec["TaskTemplate"]["Networks"][0]["Target"] == "net1"  # a copy
