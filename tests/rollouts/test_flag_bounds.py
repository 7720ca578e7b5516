"""Every number `manage.py rollout` takes states its bounds in --help, and
refuses a value past them in one line (issue 16)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from rollouts.spec.fields import FIELDS

REPO = Path(__file__).resolve().parents[2]


def test_every_numeric_flag_of_rollout_apply_states_its_range_in_help():
    done = subprocess.run(
        [sys.executable, "manage.py", "rollout", "apply", "--help"],
        cwd=REPO,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    help_text = " ".join(done.stdout.split())

    assert done.returncode == 0, done.stderr
    bounded = [field for field in FIELDS if field.maximum is not None]
    assert bounded
    for field in bounded:
        after = help_text.split(f"--{field.flag} {field.metavar} ", 1)[1]
        assert "Range " in after.split(" --", 1)[0], field.flag


@pytest.mark.django_db
def test_the_controller_refuses_a_sync_interval_past_an_hour():
    with pytest.raises(CommandError, match="must be at most 1h"):
        call_command("rollout", "controller", "--sync-interval", "2h")
