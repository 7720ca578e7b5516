"""The `bugged` image deletes the import lines of mining/worker.py.

That must break the worker role, and only the worker role.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.mining.conftest import ROOT

IMPORTS_ONLY = """
import sys, django
django.setup()
from importlib import import_module
from django.conf import settings
from django.urls import get_resolver
import_module(settings.ROOT_URLCONF)
get_resolver().url_patterns
print("mining.worker" in sys.modules)
"""


def test_the_worker_module_cannot_load_without_its_import_lines():
    source = (ROOT / "mining" / "worker.py").read_text()
    stripped = re.sub(r"^(import|from) .*$", "", source, flags=re.MULTILINE)

    with pytest.raises(NameError):
        exec(compile(stripped, "worker.py", "exec"), {"__name__": "bugged"})


@pytest.mark.parametrize("role", ["rng", "hasher", "webui", "controller"])
def test_no_other_role_imports_the_worker_module(role):
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_ONLY],
        cwd=ROOT,
        env={
            **os.environ,
            "DOCKERCOINS_ROLE": role,
            "DJANGO_SETTINGS_MODULE": "dockercoins.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


SIGNAL_RECEIVERS = """
import django
django.setup()
from django.core import signals
from django.db import close_old_connections
# disconnect() answers whether the receiver was connected.
print(signals.request_finished.disconnect(close_old_connections))
"""


@pytest.mark.parametrize(
    ("role", "lean"), [("rng", True), ("hasher", True), ("webui", False)]
)
def test_only_rng_and_hasher_skip_the_per_request_database_housekeeping(role, lean):
    result = subprocess.run(
        [sys.executable, "-c", SIGNAL_RECEIVERS],
        cwd=ROOT,
        env={
            **os.environ,
            "DOCKERCOINS_ROLE": role,
            "DJANGO_SETTINGS_MODULE": "dockercoins.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip() == str(not lean), result.stderr
