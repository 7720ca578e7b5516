"""Durations round-trip: what is shown parses back to what is stored, and what
is stored is what the engine gets (issue 16)."""

import pytest
from django.core.management import CommandError, call_command

from rollouts.admin.forms import SpecFormField
from rollouts.spec import fields, specs

MONITOR = fields.BY_NAME["update_monitor"]


@pytest.mark.parametrize("text", ["0.000000001ms", "0.5ms", "1.0001s", 0.0000001])
def test_a_duration_finer_than_a_millisecond_is_refused(text):
    with pytest.raises(
        fields.ParseError, match="finer than the smallest duration, 1ms"
    ):
        fields.parse_duration(text)


@pytest.mark.parametrize("text", ["1 0", "1 0s", "1. 5s", "1m3 0s"])
def test_a_space_between_digits_is_not_read_as_one_number(text):
    with pytest.raises(fields.ParseError, match="not a duration"):
        fields.parse_duration(text)


def test_spaces_between_parts_are_still_read():
    assert fields.parse_duration("1m 30s") == 90.0


@pytest.mark.parametrize(
    "text",
    ["1ms", "999ms", "0.3", "1.5s", "59.999s", "1m0.001s", "1h59m59.999s", "24h", "0"],
)
def test_what_is_shown_parses_back_to_what_is_stored(text):
    stored = fields.parse_duration(text)
    shown = fields.human_duration(stored)
    assert fields.parse_duration(shown) == stored
    # and the engine gets exactly the stored value, in whole milliseconds
    nanoseconds = specs.to_ns(stored)
    assert nanoseconds % 1_000_000 == 0 and nanoseconds / 1e9 == stored


def test_the_admin_form_refuses_a_sub_millisecond_monitor_and_shows_what_it_parses():
    field = SpecFormField(MONITOR)
    with pytest.raises(Exception, match="finer than the smallest duration"):
        field.clean("0.000000001ms")
    for stored in (0.001, 0.3, 20.0, 90.5):
        assert field.clean(field.prepare_value(stored)) == stored


@pytest.mark.django_db
def test_rollout_apply_refuses_a_sub_millisecond_monitor_in_one_line():
    with pytest.raises(CommandError, match="finer than the smallest duration"):
        call_command("rollout", "apply", "worker", "--update-monitor", "0.000000001ms")
