#!/usr/bin/env bash
# `make down`: remove the stack and wait until its services, containers,
# networks and secrets are gone. The database volume (<stack>_pgdata: the admin
# user, rollout history) is kept for the next `make up`; --volumes removes it.
# A lab (make up NODES=N) goes whole: its stack, engines, namespaces, bridge,
# firewall rule, forwarders and data (deploy/lab.sh down); leftovers of a
# killed run too. The work is deploy/swarmops/up.py's.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    ""|--volumes) ;;
    *) die "usage: deploy/down.sh [--volumes]" ;;
esac
if [ ! -x "$DOCKERCOINS_ROOT/.venv/bin/python" ]; then
    log "no .venv: make up never ran in this checkout, nothing to remove"
    exit 0
fi
swarmops down "${STACK_NAME:-dockercoins}" ${1:+"$1"}
