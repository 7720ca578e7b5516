"""A bad setting stops a process at start in one line naming the variable.

dockercoins.env raises ImproperlyConfigured while the settings module is
imported; left alone, that is a 30-line traceback from manage.py, and from
gunicorn a "Worker failed to boot" loop. manage.py and gunicorn's master call
settings_or_exit() first instead.
"""

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
