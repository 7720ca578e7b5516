"""Where the deploy files are and what the swarm's objects are called: the one
copy of each name the scripts, tests and benches share."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
DEPLOY_DIR = REPO / "deploy"
# Generated files: secrets' sources, the live-modes overrides, build logs.
BUILD_DIR = DEPLOY_DIR / ".build"
LAB_SH = DEPLOY_DIR / "lab.sh"

# The label `docker stack deploy` puts on every object of a stack.
STACK_LABEL = "com.docker.stack.namespace"
# The label the engine puts on a service's containers.
SERVICE_LABEL = "com.docker.swarm.service.name"
# The node label that pins PostgreSQL (its volume is node-local).
DB_NODE_LABEL = "dockercoins.db"

# Test and bench stacks: unique names under these prefixes, each with its
# owner's pid in OWNERS_DIR, so that a prune spares a run still going on.
TEST_PREFIX = "dockercoins-test-"
BENCH_PREFIX = "dockercoins-bench-"
OWNERS_DIR = Path(os.environ.get("STACK_OWNERS_DIR", "/tmp/dockercoins-stacks"))

# The controller's user in the image (deploy/Dockerfile).
IMAGE_UID = 10001


def service_name(stack: str, short: str) -> str:
    """The swarm service's full name: `worker` -> `<stack>_worker`."""
    return f"{stack}_{short}"
