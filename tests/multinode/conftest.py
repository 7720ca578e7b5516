"""The multi-node tier: one 3-node lab per session (deploy/lab.sh, the code
`make up NODES=3` runs) with one test stack on it. Skipped, loudly, only where
network namespaces cannot be made; tear-down must leave nothing behind."""

from collections.abc import Iterator

import pytest

from deploy.labs import Lab, LabStack, namespaces_unavailable, running_lab

NODES = 3


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    why = namespaces_unavailable()
    if why:
        message = f"SKIPPING THE MULTI-NODE TIER: {why}"
        print(f"\n{'!' * 8} {message}")
        pytest.skip(message)
    with running_lab(NODES) as formed:
        yield formed
    left = formed.leftovers()
    assert not left, f"the lab's tear-down left behind:\n{left}"


@pytest.fixture(scope="session")
def lab_stack(lab: Lab) -> Iterator[LabStack]:
    with lab.stack() as stack:
        yield stack
