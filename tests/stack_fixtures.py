"""pytest fixtures for tests that need a deployed DockerCoins stack.

Import them into a conftest.py next to your tests:

    from tests.stack_fixtures import stack  # noqa: F401
"""

from collections.abc import Iterator

import pytest

from deploy.stacks import Stack, deployed_stack


@pytest.fixture(scope="module")
def stack(docker_client) -> Iterator[Stack]:
    """A stack of the 1.0 images for the test module, removed afterwards."""
    with deployed_stack() as deployed:
        yield deployed
