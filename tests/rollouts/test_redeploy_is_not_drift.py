"""Against the fake engine: `make down; make up` creates every
network and secret again under new ids; what the operator means (their names)
did not change, so it is not drift, and a re-apply writes the new ids."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from rollouts.control import driver
from rollouts.engine.sync import service_sync
from rollouts.models import Service
from rollouts.records import requests as services
from rollouts.spec.drift import (
    describe_drift,
    drift_lines,
    service_drift,
    spec_differences,
)

pytestmark = pytest.mark.django_db

SECRET = {"File": {"Name": "pg_password"}, "SecretName": "dockercoins_pg_password"}


def with_secret(engine, service: dict, secret_id: str) -> None:
    container = service["Spec"]["TaskTemplate"]["ContainerSpec"]
    container["Secrets"] = [{**SECRET, "SecretID": secret_id}]


def redeploy(engine, name: str) -> dict:
    """The stack removed and deployed again: same names, new ids."""
    old = engine.service(name)
    del engine.svcs[old["ID"]]
    engine.task_list = [t for t in engine.task_list if t["ServiceID"] != old["ID"]]
    engine.network_list = [{"Id": "net2", "Name": "dockercoins_default"}]
    for other in engine.svcs.values():  # the whole stack is deployed again
        for network in other["Spec"]["TaskTemplate"].get("Networks", []):
            network["Target"] = "net2"
    new = engine.add_service(name, replicas=2)
    new["Spec"]["TaskTemplate"]["Networks"][0]["Target"] = "net2"
    with_secret(engine, new, "sec2")
    return new


@pytest.fixture
def redeployed(engine) -> Service:
    with_secret(engine, engine.service("dockercoins_worker"), "sec1")
    service_sync(client=engine.client())
    redeploy(engine, "dockercoins_worker")
    service_sync(client=engine.client())
    return Service.objects.get(name="dockercoins_worker")


def test_it_shows_no_drift_after_a_redeploy_that_only_changed_ids(
    redeployed, engine, monkeypatch
):
    # The command talks to the fake engine, never to a stack this machine runs.
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )
    assert service_drift(redeployed) is None
    out = io.StringIO()
    call_command("rollout", "status", stdout=out, stderr=io.StringIO())
    assert "drift" not in out.getvalue()


def test_a_reapply_after_a_redeploy_writes_the_new_ids(engine, redeployed):
    rollout = services.service_reapply(service=redeployed, user=None)
    driver.rollout_apply(rollout=rollout, client=engine.client())

    template = engine.writes[-1]["task_template"]
    assert template["Networks"][0]["Target"] == "net2"
    assert template["ContainerSpec"]["Secrets"][0]["SecretID"] == "sec2"


def test_a_real_network_change_is_one_readable_line_in_plans_words(engine):
    service_sync(client=engine.client())
    engine.network_list.append({"Id": "net9", "Name": "dockercoins_other"})
    svc = engine.service("dockercoins_worker")
    svc["Spec"]["TaskTemplate"]["Networks"] = [{"Target": "net9", "Aliases": ["x"]}]
    service_sync(client=engine.client())

    found = service_drift(Service.objects.get(name="dockercoins_worker"))

    assert drift_lines(found) == [
        "networks: dockercoins_default (aliases worker) -> dockercoins_other "
        "(aliases x)"
    ]
    assert "{" not in describe_drift(found)  # never raw JSON


def test_a_record_that_knows_a_network_by_an_old_id_compares_its_aliases():
    def spec(target: str) -> dict:
        return {
            "TaskTemplate": {
                "ContainerSpec": {"Image": "dc:1.0"},
                "Networks": [{"Target": target, "Aliases": ["hasher"]}],
            }
        }

    stale_id = "h9gv" + "x" * 21
    assert spec_differences(spec(stale_id), spec("dockercoins_default")) == []
    assert spec_differences(spec("dockercoins_a"), spec("dockercoins_b")) != []


def test_a_redeploy_undoing_the_workshops_changes_is_one_plain_line_per_field(
    engine, operator
):
    # The workshop scaled the worker and slowed its updates through the
    # product; `make down; make up` deploys the stack file again (replicas 2,
    # its own update policy) under new network and secret ids. The drift is
    # real, and reads as `plan` words it: no JSON, no id the engine assigned.
    with_secret(engine, engine.service("dockercoins_worker"), "sec1")
    service_sync(client=engine.client())
    worker = Service.objects.get(name="dockercoins_worker")
    rollout = services.service_change(
        service=worker,
        user=None,
        change_cause="workshop",
        replicas=10,
        update_delay=5.0,
        update_parallelism=2,
    )
    driver.rollout_apply(rollout=rollout, client=engine.client())
    service_sync(client=engine.client())
    redeploy(engine, "dockercoins_worker")
    service_sync(client=engine.client())
    redeployed = Service.objects.get(name="dockercoins_worker")

    lines = drift_lines(service_drift(redeployed))

    assert lines == [
        "replicas: 10 -> 2",
        "update parallelism: 2 -> 1",
        "update delay: 5s -> 0s",
    ], lines
    page = operator.get(
        reverse("admin:rollouts_service_change", args=[redeployed.pk])
    ).content.decode()
    for line in lines:
        escaped = line.replace(">", "&gt;")
        assert f'<div class="rollouts-drift-line">{escaped}</div>' in page, page
    shown = "\n".join(lines) + describe_drift(service_drift(redeployed))
    for raw in ("{", "[", "net1", "net2", "sec1", "sec2", "SecretID", "Target"):
        assert raw not in shown, raw


def test_it_never_shows_the_engines_force_update_counter_as_drift(engine):
    worker = engine.service("dockercoins_worker")
    worker["Spec"]["TaskTemplate"]["ForceUpdate"] = 2  # two forced rollouts
    service_sync(client=engine.client())
    redeploy(engine, "dockercoins_worker")  # created again: the counter is 0
    service_sync(client=engine.client())

    service = Service.objects.get(name="dockercoins_worker")

    assert not [line for line in drift_lines(service_drift(service)) if "force" in line]
    # A write in flight still sees it: someone else forced the service.
    live = engine.service("dockercoins_worker")["Spec"]
    forced = {**live, "TaskTemplate": {**live["TaskTemplate"], "ForceUpdate": 3}}
    assert ("force update", "0", "3") in spec_differences(live, forced)
