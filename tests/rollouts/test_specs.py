"""Translating our desired fields to engine specs and back, without an engine."""

import pytest

from rollouts.engine.objects import Task, tasks_from_engine
from rollouts.models import Service
from rollouts.spec import fields, specs

SEED = {  # the workshop's step 7 policy
    "image": "dockercoins",
    "tag": "bugged",
    "mode": "replicated",
    "replicas": 10,
    "update_parallelism": 2,
    "update_delay": 5.0,
    "update_failure_action": "rollback",
    "update_monitor": 20.0,
    "update_max_failure_ratio": 0.2,
    "update_order": "stop-first",
    "rollback_parallelism": 1,
    "rollback_delay": 0.0,
    "rollback_failure_action": "pause",
    "rollback_monitor": 5.0,
    "rollback_max_failure_ratio": 0.0,
    "rollback_order": "stop-first",
}


def test_every_update_and_rollback_field_is_set_explicitly_in_nanoseconds():
    update = specs.policy_config(SEED, "update")
    rollback = specs.policy_config(SEED, "rollback")

    assert update == {
        "Parallelism": 2,
        "Delay": 5_000_000_000,
        "FailureAction": "rollback",
        "Monitor": 20_000_000_000,
        "MaxFailureRatio": 0.2,
        "Order": "stop-first",
    }
    assert rollback == {
        "Parallelism": 1,
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0.0,
        "Order": "stop-first",
    }


def test_a_spec_without_update_config_means_the_engine_defaults_not_the_sdks():
    assert specs.policy_from_config(None) == {
        "parallelism": 1,
        "delay": 0.0,
        "failure_action": "pause",
        "monitor": 5.0,
        "max_failure_ratio": 0.0,
        "order": "stop-first",
    }


def test_omitted_config_values_read_as_the_engine_reads_them():
    # The engine omits zero values; a zero Monitor is its default, 5 s.
    policy = specs.policy_from_config({"Parallelism": 0, "MaxFailureRatio": 0})
    assert policy["parallelism"] == 0
    assert policy["delay"] == 0.0
    assert policy["monitor"] == 5.0
    assert policy["failure_action"] == "pause"


def test_model_defaults_are_the_engine_defaults():
    service = Service()
    for key, value in fields.ENGINE_POLICY_DEFAULTS.items():
        assert getattr(service, f"update_{key}") == value
        assert getattr(service, f"rollback_{key}") == value


def test_applying_desired_fields_keeps_everything_else_of_the_spec():
    spec = {
        "Name": "dockercoins_worker",
        "Labels": {"com.docker.stack.namespace": "dockercoins"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "dockercoins:1.0", "Env": ["A=1"]},
            "Networks": [{"Target": "n1"}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr"},
    }

    new = specs.apply_desired(spec, SEED, "dockercoins:bugged")

    assert new["TaskTemplate"]["ContainerSpec"] == {
        "Image": "dockercoins:bugged",
        "Env": ["A=1"],
    }
    assert new["TaskTemplate"]["Networks"] == [{"Target": "n1"}]
    assert new["Labels"] == spec["Labels"]
    assert new["EndpointSpec"] == {"Mode": "dnsrr"}
    assert new["Mode"] == {"Replicated": {"Replicas": 10}}
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "dockercoins:1.0"
    assert specs.desired_from_spec(new) == {**SEED}


def test_global_mode_has_no_replicas():
    new = specs.apply_desired(
        {"TaskTemplate": {"ContainerSpec": {"Image": "x"}}},
        {**SEED, "mode": "global", "replicas": None},
        "dockercoins:1.0",
    )
    assert new["Mode"] == {"Global": {}}
    assert specs.spec_mode(new) == ("global", None)


@pytest.mark.parametrize(
    "reference, parsed",
    [
        ("dockercoins:1.0", ("dockercoins", "1.0", "")),
        ("dockercoins", ("dockercoins", "latest", "")),
        ("registry:5000/team/app:v2", ("registry:5000/team/app", "v2", "")),
        (
            "dockercoins:1.0@sha256:" + "a" * 64,
            ("dockercoins", "1.0", "sha256:" + "a" * 64),
        ),
        ("Dockercoins:1.0", None),
        ("dockercoins:", None),
        ("docker coins", None),
        ("", None),
    ],
)
def test_image_references_are_parsed_like_docker(reference, parsed):
    assert specs.parse_image(reference) == parsed


@pytest.mark.parametrize(
    "text, seconds",
    [("5", 5.0), ("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0)],
)
def test_durations_parse_from_docker_notation(text, seconds):
    assert fields.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 sec", "s", "1x", ""])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        fields.parse_duration(text)


def test_the_plan_diff_speaks_human_units():
    live = {**SEED, "tag": "1.0", "update_delay": 0.0, "update_parallelism": 0}
    rows = specs.spec_diff(live, SEED)
    assert rows == [
        ("image", "dockercoins:1.0", "dockercoins:bugged"),
        ("update parallelism", "0 (all at once)", "2"),
        ("update delay", "0s", "5s"),
    ]
    assert specs.spec_diff(SEED, dict(SEED)) == []


def test_expected_duration_counts_batches_delay_and_monitor():
    live = {**SEED, "tag": "1.0"}
    text = specs.expected_duration(live, SEED, tasks=10)
    # 5 batches, 4 delays of 5 s, 20 s monitor, ~2 s start-up per batch
    assert text.startswith("about 50s: 5 batch(es) of up to 2 task(s)")
    assert "a few seconds" in specs.expected_duration(SEED, {**SEED, "replicas": 2}, 2)
    assert "re-creation" in specs.expected_duration(live, {**SEED, "mode": "global"}, 1)


def test_tasks_are_grouped_by_slot_newest_first_like_docker_service_ps():
    def task(slot, created, state, image="dockercoins:1.0", node="n1"):
        return {
            "ID": f"{slot}-{created}",
            "Slot": slot,
            "NodeID": node,
            "CreatedAt": f"2026-01-01T12:00:{created:02d}.000000000Z",
            "DesiredState": "running" if state == "running" else "shutdown",
            "Spec": {"ContainerSpec": {"Image": image + "@sha256:" + "b" * 64}},
            "Status": {"State": state, "Err": "task: non-zero exit (1)"},
        }

    tasks = [
        task(10, 1, "running"),
        task(3, 1, "failed", "dockercoins:bugged"),
        task(3, 5, "running"),
        task(3, 2, "failed", "dockercoins:bugged"),
    ]

    groups = specs.group_tasks(tasks_from_engine(tasks), {"n1": "node-0"})

    assert [g["slot"] for g in groups] == ["3", "10"]
    rows = groups[0]["tasks"]
    assert [r["state"] for r in rows] == ["running", "failed", "failed"]
    assert rows[1]["image"] == "dockercoins:bugged"
    assert rows[1]["node"] == "node-0"
    assert rows[1]["error"] == "task: non-zero exit (1)"


def test_global_tasks_are_grouped_by_node():
    task = {
        "ID": "t1",
        "Slot": 0,
        "NodeID": "n1",
        "CreatedAt": "2026-01-01T12:00:00Z",
        "DesiredState": "running",
        "Spec": {"ContainerSpec": {"Image": "dockercoins:1.0"}},
        "Status": {"State": "running"},
    }
    groups = specs.group_tasks([Task.from_engine(task)], {"n1": "node-0"})
    assert groups[0]["slot"] == "node-0"


def test_engine_times_keep_microseconds():
    moment = specs.parse_engine_time("2026-11-27T20:08:58.571248189Z")
    assert (moment.second, moment.microsecond, moment.utcoffset().seconds) == (
        58,
        571248,
        0,
    )


@pytest.mark.parametrize(
    "text", ["nan", "inf", "-inf", "1e3", "1e999", "\u0665s", "\u00b2", "5s5", "1_000"]
)
def test_durations_outside_the_grammar_are_refused(text):
    with pytest.raises(fields.ParseError):
        fields.parse_duration(text)


@pytest.mark.parametrize(
    "value", ["\u0663", "\u00b2", "\u2460", "1e3", "1.5", "9" * 16]
)
def test_whole_numbers_are_ascii_digits_only(value):
    with pytest.raises(fields.ParseError):
        fields.parse_int(value)


def test_numbers_given_as_numbers_must_be_finite():
    for parse in (fields.parse_duration, fields.parse_decimal):
        for value in (float("nan"), float("inf"), True):
            with pytest.raises(fields.ParseError):
                parse(value)
    assert fields.parse_int(3) == 3 and fields.parse_duration(2) == 2.0


def test_the_declaration_matches_the_model_columns():
    # models.Service stores what rollouts.spec.fields declares: same defaults and
    # choices, so the admin, the API and the command agree with the database.
    for field in fields.FIELDS:
        column = Service._meta.get_field(field.name)
        if field.default is not None:
            assert column.default == field.default, field.name
        if field.choices is not None:
            assert list(column.choices) == list(field.choices.choices), field.name
        assert column.null == field.optional, field.name
        if field.max_length is not None:
            assert column.max_length == field.max_length, field.name


def test_a_task_differing_only_in_placement_runs_the_current_spec():
    # The engine keeps a task whose node still satisfies new constraints
    # (never replaced), so a rollout must not wait for it.
    template = {"ContainerSpec": {"Image": "dockercoins:1.0"}}
    constrained = {
        **template,
        "Placement": {"Constraints": ["node.hostname!=node-0"]},
    }
    other_image = {"ContainerSpec": {"Image": "dockercoins:1.1"}}

    assert specs.task_fingerprint(template) == specs.task_fingerprint(constrained)
    assert specs.task_fingerprint(template) != specs.task_fingerprint(other_image)
