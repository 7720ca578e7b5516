#!/usr/bin/env bash
# `make down`: remove the stack and wait until its services, containers,
# networks and secrets are gone. The database volume (<stack>_db: the admin
# user, rollout history) is kept for the next `make up`; --volumes removes it.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STACK_NAME="${STACK_NAME:-dockercoins}"
case "${1:-}" in
    ""|--volumes) ;;
    *) die "usage: deploy/down.sh [--volumes]" ;;
esac
docker_ready || { log "no Docker engine answers: nothing to remove"; exit 0; }
stack_rm "$STACK_NAME" "${1:-}"
