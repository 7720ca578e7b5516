"""Against the fake engine: our revision history decides where a
rollback goes. The engine's one-deep PreviousSpec is overwritten by every
update, even a no-op one from outside; then `rollout rollback` refuses in one
line, naming what runs and the `undo` that goes where the operator means."""

import io

import pytest
from django.core.management import call_command

from rollouts.control import driver
from rollouts.models import Rollout, RolloutState, Service
from rollouts.records import requests as services

pytestmark = pytest.mark.django_db


def on_11(worker: Service, engine) -> Rollout:
    """worker 1.0 (revision 1) -> 1.1 (revision 2), completed."""
    rollout = services.service_change(
        service=worker, user=None, change_cause="1.1", tag="1.1"
    )
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    Rollout.objects.filter(pk=rollout.pk).update(state=RolloutState.COMPLETED)
    return rollout


def rolled_back(worker: Service, engine) -> Rollout:
    rollout = services.service_rollback(service=worker, user=None, change_cause="x")
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    rollout.refresh_from_db()
    return rollout


def test_after_an_outside_no_op_update_a_rollback_is_refused_with_the_undo(
    worker, engine
):
    on_11(worker, engine)
    engine.outside_update("dockercoins_worker")  # `docker service update -d`
    writes = len(engine.writes)

    rollout = rolled_back(worker, engine)

    assert rollout.state == RolloutState.FAILED
    assert rollout.reason == (
        "rollback refused: dockercoins_worker runs dockercoins:1.1 and the "
        "engine's previous spec is the same (an update since, even one that "
        "changed nothing, overwrote it): a rollback would change nothing; "
        "`rollout undo worker` puts back revision 1 (dockercoins:1.0): nothing "
        "was sent"
    )
    assert len(engine.writes) == writes  # nothing was sent


def test_a_previous_spec_written_outside_is_not_where_a_rollback_goes(worker, engine):
    on_11(worker, engine)
    engine.outside_update("dockercoins_worker", Image="dockercoins:bugged")
    engine.outside_update("dockercoins_worker", Image="dockercoins:1.1")

    rollout = rolled_back(worker, engine)

    assert rollout.state == RolloutState.FAILED
    assert "the engine's previous spec (image dockercoins:bugged) is not " in (
        rollout.reason
    )
    assert "revision 1, the one before it" in rollout.reason


def test_a_rollback_to_the_revision_before_goes_ahead(worker, engine):
    on_11(worker, engine)

    rollout = rolled_back(worker, engine)

    assert rollout.state == RolloutState.WATCHING
    assert engine.writes[-1]["params"]["rollback"] == "previous"


def test_plan_shows_where_a_rollback_would_go(worker, engine, monkeypatch):
    on_11(worker, engine)
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )
    out = io.StringIO()
    call_command("rollout", "plan", "worker", stdout=out)
    assert "rollback: goes to revision 1, dockercoins:1.0" in out.getvalue()

    engine.outside_update("dockercoins_worker")  # a no-op: no drift
    out = io.StringIO()
    call_command("rollout", "plan", "worker", stdout=out)
    assert "rollback would be refused: " in out.getvalue()
