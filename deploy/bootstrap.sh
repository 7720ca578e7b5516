#!/usr/bin/env bash
# Prepare this machine for DockerCoins; safe to re-run, it only does what is
# missing. On a fresh Debian (as root): installs the Docker engine, Redis,
# debootstrap, npm, python3-venv, make, and the lab's iproute2, iptables,
# util-linux and socat; creates .venv with requirements-dev.txt, or updates it
# when the requirements changed; starts dockerd; creates a single-node swarm
# (or uses the one this engine is in).
#   deploy/bootstrap.sh           what `make up` needs
#   deploy/bootstrap.sh --test    also Chromium (browser tests), PostgreSQL
#   deploy/bootstrap.sh --bench   also wrk, the load generator of bench/pipeline.py
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DOCKERCOINS_ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$DOCKERCOINS_ROOT/.venv"

missing_packages() {
    command -v docker >/dev/null && command -v dockerd >/dev/null || echo docker.io
    command -v redis-server >/dev/null || echo redis-server
    command -v debootstrap >/dev/null || echo debootstrap
    command -v npm >/dev/null || echo npm
    command -v make >/dev/null || echo make
    # Debian's python3 has no ensurepip (so no `-m venv`) without python3-venv.
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || echo python3-venv
    # The lab (make up NODES=N, the multi-node test tier, bench/lab.py):
    # namespaces and the bridge, the firewall rule, nsenter/unshare, the
    # forwarders from 127.0.0.1.
    command -v ip >/dev/null || echo iproute2
    command -v iptables >/dev/null || echo iptables
    command -v nsenter >/dev/null && command -v unshare >/dev/null || echo util-linux
    command -v socat >/dev/null || echo socat
    case "${1:-}" in
        --test)
            command -v chromium >/dev/null || echo chromium
            # A real PostgreSQL for the concurrent-migration test.
            ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo postgresql
            ;;
        --bench) command -v wrk >/dev/null || echo wrk ;;
    esac
}

install_packages() {
    local packages
    packages="$(missing_packages "$@" | tr '\n' ' ')"
    [ -n "${packages// /}" ] || return 0
    [ "$(id -u)" -eq 0 ] || die "missing: $packages -- run as root, or apt-get install them"
    log "installing $packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
}

# The venv is rebuilt from scratch only when missing or broken; otherwise
# pip brings it up to date when the requirements files changed.
ensure_venv() {
    local stamp="$VENV/.requirements.sha256" want
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$PYTHON" --version 2>&1) is too old: DockerCoins needs Python 3.11+"
    want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    else
        log "creating .venv with $("$PYTHON" --version 2>&1)"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    log "installing requirements-dev.txt into .venv"
    "$VENV/bin/pip" install --quiet -r requirements-dev.txt
    echo "$want" >"$stamp"
}

# The venv comes before the engine: waiting for dockerd and forming the swarm
# are deploy/swarmops' (in .venv).
main() {
    install_packages "$@"
    ensure_venv
    ensure_docker
    swarmops ensure-swarm
    swarmops has-ipvs \
        || log "this kernel has no IPVS: stacks deploy with deploy/docker-compose.no-ipvs.yml"
}

main "$@"
