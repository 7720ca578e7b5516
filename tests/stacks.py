"""Moved to deploy/stacks.py (bench/ uses it too); kept for test modules that
still import it from here."""

from deploy.stacks import (  # noqa: F401
    REPO,
    Stack,
    StackError,
    deployed_stack,
    docker,
    free_ports,
    new_stack,
    stack_sh,
)
