#!/usr/bin/env bash
# `make up`: from a fresh Debian machine (as root) to DockerCoins mining on a
# single-node swarm. Safe to re-run: each step does only what is missing, and
# re-deploying updates the stack in place (services go back to the stack file,
# except a service's mode: one made global stays global).
#   STACK_NAME (dockercoins), ports and tags: see deploy/docker-compose.yml.
#   NODES=N (2..5): on a lab of N engines on this machine instead (deploy/lab.sh),
#   reached from the host through forwarders on 127.0.0.1:8000-8002.
# The machine's part is here (packages, engine, images); the stack's is
# deploy/swarmops/up.py's.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DOCKERCOINS_ROOT"

NODES="${NODES:-1}"
[[ "$NODES" =~ ^[1-5]$ ]] || die "NODES must be 1 (the host's engine) or 2..5 (a lab), not '$NODES'"
deploy/bootstrap.sh
deploy/build-images.sh
swarmops up --nodes "$NODES" "${STACK_NAME:-dockercoins}"
