"""A bad setting stops a process at start in one line naming the variable.

dockercoins.env raises ImproperlyConfigured while the settings module is
imported; left alone, that is a 30-line traceback from manage.py, and from
gunicorn a "Worker failed to boot" loop. manage.py and gunicorn's master call
settings_or_exit() first instead.

manage.py also starts and ends fast (setup_fast, exit_fast): a command line's
start and exit are part of every `rollout apply --wait` an operator waits for.
"""

import gc
import os
import sys

from django.core.exceptions import ImproperlyConfigured

EXIT_CONFIG = 78  # sysexits' EX_CONFIG


def settings_or_exit(program: str) -> None:
    """Import the settings; on a bad one, print `program: <reason>` and exit."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dockercoins.settings")
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 (the import is the check)
    except ImproperlyConfigured as error:
        sys.stderr.write(f"{program}: bad setting: {error}\n")
        raise SystemExit(EXIT_CONFIG) from None


def setup_fast(program: str, *, runserver: bool = False) -> None:
    """settings_or_exit(), then django.setup() with the cyclic garbage collector
    paused, then the start-up heap frozen.

    Importing Django and our apps makes some 900 modules' worth of objects and
    no garbage; the collector would traverse them again and again while they
    are made (about 0.08 s of a command's 0.5 s start on this project's 2-core
    machine). Frozen (gc.freeze), they stay out of every later collection, so
    a long-running command (`mine`, `rollout controller`) collects only what
    it makes. runserver is left to set Django up itself: its autoreloader
    wraps the setup to survive a syntax error.
    """
    gc.disable()
    try:
        settings_or_exit(program)
        if not runserver:
            import django

            django.setup()
    finally:
        gc.freeze()
        gc.enable()


def exit_fast() -> None:
    """Freeze the heap before the interpreter ends, so that its last
    collections do not traverse every object the command made: 0.1-0.4 s of
    every command's exit here, after its work and output are done (atexit
    handlers, buffered output and open files are still flushed as usual)."""
    gc.freeze()
