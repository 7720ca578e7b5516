#!/usr/bin/env bash
# `make down`: remove the stack and wait until its services, containers,
# networks and secrets are gone. The database volume (<stack>_pgdata: the admin
# user, rollout history) is kept for the next `make up`; --volumes removes it.
# A lab (make up NODES=N) goes whole: its stack, engines, namespaces, bridge,
# firewall rule, forwarders and data (deploy/lab.sh down); leftovers of a
# killed run too.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STACK_NAME="${STACK_NAME:-dockercoins}"
export LAB_ID="${LAB_ID:-dc}"
case "${1:-}" in
    ""|--volumes) ;;
    *) die "usage: deploy/down.sh [--volumes]" ;;
esac
if [ -n "$("$DEPLOY_DIR/lab.sh" leftovers 2>/dev/null)" ]; then
    if "$DEPLOY_DIR/lab.sh" active; then
        DOCKER_HOST="$("$DEPLOY_DIR/lab.sh" host 0)" stack_rm "$STACK_NAME" --volumes || true
    fi
    "$DEPLOY_DIR/lab.sh" down
    log "lab $LAB_ID removed"
    [ -z "$("$DEPLOY_DIR/lab.sh" leftovers)" ] || die "lab $LAB_ID: left behind: $("$DEPLOY_DIR/lab.sh" leftovers)"
    exit 0
fi
docker_ready || { log "no Docker engine answers: nothing to remove"; exit 0; }
stack_rm "$STACK_NAME" "${1:-}"
