"""Last applied vs live vs desired, as pure functions over engine specs."""

from datetime import UTC, datetime

from rollouts.control.outcome import recent_ends
from rollouts.spec.drift import describe_drift, drift, follow_live, spec_differences
from rollouts.spec.fields import BY_NAME, CANARY_HOLD
from rollouts.spec.specs import desired_from_spec, is_held, to_ns


def spec(image="dockercoins:1.0", replicas=4, **template) -> dict:
    return {
        "Name": "dockercoins_worker",
        "TaskTemplate": {"ContainerSpec": {"Image": image}, **template},
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause"},
    }


def test_everything_that_decides_where_tasks_run_is_compared():
    theirs = spec(Placement={"Constraints": ["node.labels.none==1"]})
    theirs["UpdateConfig"]["Monitor"] = 1_000_000  # 1 ms

    assert spec_differences(spec(), theirs) == [
        ("placement constraints", "-", "node.labels.none==1"),
        ("update monitor", "5s", "1ms"),
    ]


def test_no_record_of_what_we_applied_is_no_drift():
    assert drift({}, spec(replicas=10)) is None
    assert drift(spec(), spec()) is None


def test_drift_says_what_changed_and_when_the_engine_says_it_was_written():
    at = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    found = drift(spec(), spec(replicas=10), updated_at=at)
    assert describe_drift(found) == (
        "replicas 4 -> 10 (written outside at 2026-01-01 12:30:00 UTC)"
    )


def test_a_change_keeps_what_runs_for_every_field_the_operator_left_alone():
    desired_now = {**desired_from_spec(spec()), "progress_deadline": 600}
    live = spec(replicas=10)
    live["UpdateConfig"]["Monitor"] = 1_000_000

    form = {**desired_now, "tag": "1.1", "update_parallelism": 2}
    result = follow_live(desired_now, live, form)

    assert (result["tag"], result["update_parallelism"]) == ("1.1", 2)
    assert (result["replicas"], result["update_monitor"]) == (10, 0.001)


def test_flags_given_explicitly_are_carried_even_when_equal_to_the_old_desired():
    desired_now = desired_from_spec(spec())
    result = follow_live(
        desired_now, spec(replicas=10), {"replicas": 4}, carry=["replicas"]
    )
    assert result["replicas"] == 4


def test_tasks_that_ended_after_a_rollout_are_listed_newest_first():
    live_tasks = [
        {
            "slot": "2",
            "tasks": [
                {
                    "image": "dc:1.1",
                    "state": "running",
                    "since": "2026-01-01T12:05:00Z",
                },
                {
                    "image": "dc:1.1",
                    "state": "failed",
                    "exit_code": 3,
                    "since": "2026-01-01T12:04:01.5Z",
                },
                {"image": "dc:1.0", "state": "shutdown", "since": "2026-01-01T12:03Z"},
            ],
        }
    ]
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    assert recent_ends(live_tasks, since=since) == [
        "2 (dc:1.1) failed, exit 3 at 12:04:01"
    ]


def test_a_policy_set_on_one_side_only_is_drift_in_words_not_a_crash():
    from rollouts.spec.drift import spec_differences

    ours = spec()
    theirs = spec()
    restart = {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0}
    ours["TaskTemplate"].pop("RestartPolicy", None)
    theirs["TaskTemplate"]["RestartPolicy"] = restart
    rows = spec_differences(ours, theirs)
    assert rows and all(label.startswith("restart ") for label, _, _ in rows)
    assert all(old == "-" for _, old, _ in rows)


def test_the_next_change_never_inherits_a_canarys_hold_from_what_runs():
    # A hold left behind (issue 14: a `bugged` apply would have waited a day
    # between tasks): the declared parallelism and delay stand, not the hold.
    declared = {**desired_from_spec(spec()), "update_delay": 2.0}
    held = spec()
    held["UpdateConfig"].update({"Parallelism": 3, "Delay": to_ns(CANARY_HOLD)})
    result = follow_live(declared, held, {"tag": "1.1"}, carry=["tag"])
    assert (result["update_parallelism"], result["update_delay"]) == (1, 2.0)
    assert is_held(held) and not is_held(spec())


def test_no_declared_policy_can_be_mistaken_for_the_hold():
    assert BY_NAME["update_delay"].maximum < CANARY_HOLD
