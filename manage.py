#!/usr/bin/env python3
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dockercoins.settings")
    from dockercoins.startup import exit_fast, setup_fast

    setup_fast("manage.py", runserver=sys.argv[1:2] == ["runserver"])
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    finally:
        exit_fast()


if __name__ == "__main__":
    main()
