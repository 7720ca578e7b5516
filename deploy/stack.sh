#!/usr/bin/env bash
# Deploy, wait for and remove a DockerCoins stack: the one implementation that
# up.sh, down.sh, the tests (tests/stacks.py) and bench/scaling.py all use.
#
#   deploy/stack.sh deploy NAME       deploy/update from our compose files (the
#                                     no-IPVS override is added when needed)
#   deploy/stack.sh wait NAME [SECS]  wait until every service converged
#   deploy/stack.sh pending NAME      print the services not converged yet
#   deploy/stack.sh rm NAME [--volumes]
#                                     remove it, wait until nothing is left
#   deploy/stack.sh prune-tests       remove stale dockercoins-test-*/bench-* stacks
#   deploy/stack.sh has-ipvs          exit 0 when the kernel has IPVS
#
# Image tags, ports and replicas come from the environment: DOCKERCOINS_IMAGE,
# DOCKERCOINS_TAG, WORKER_TAG, WORKER_REPLICAS, WEBUI_PORT, RNG_PORT, HASHER_PORT.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

command="${1:-}"
[ -n "$command" ] || usage
shift
case "$command" in
    deploy) [ $# -eq 1 ] || usage; stack_deploy "$1" ;;
    wait) [ $# -ge 1 ] || usage; stack_wait "$1" "${2:-300}" ;;
    pending) [ $# -eq 1 ] || usage; stack_pending "$1" ;;
    rm) [ $# -ge 1 ] || usage; stack_rm "$1" "${2:-}" ;;
    prune-tests) prune_test_stacks ;;
    has-ipvs) has_ipvs ;;
    *) usage ;;
esac
