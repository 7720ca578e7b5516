# Shared shell functions for the deploy scripts that run system commands
# (bootstrap.sh, build-images.sh, lab.sh, up.sh, down.sh). Everything that
# reasons about the swarm is Python: `swarmops COMMAND` (deploy/swarmops/).

# shellcheck shell=bash
DOCKERCOINS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY_DIR="$DOCKERCOINS_ROOT/deploy"
BUILD_DIR="$DEPLOY_DIR/.build"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# now_s: seconds since the epoch (for the timings we print).
now_s() { date +%s; }

# swarmops COMMAND...: python -m deploy.swarmops from .venv (bootstrap.sh
# makes it before anything calls this).
swarmops() {
    [ -x "$DOCKERCOINS_ROOT/.venv/bin/python" ] \
        || die "$DOCKERCOINS_ROOT/.venv is missing: run deploy/bootstrap.sh"
    (cd "$DOCKERCOINS_ROOT" && .venv/bin/python -m deploy.swarmops "$@")
}

# ensure_docker: start dockerd when no engine answers, then wait for it. A
# systemd machine would use `systemctl start docker`; these machines have no
# init system, so we fall back to running dockerd ourselves.
ensure_docker() {
    docker info >/dev/null 2>&1 && return 0
    command -v dockerd >/dev/null || die "dockerd is not installed (run deploy/bootstrap.sh as root)"
    if command -v systemctl >/dev/null && systemctl start docker 2>/dev/null; then
        log "started docker with systemctl"
    else
        log "starting dockerd (log: /var/log/dockerd.log)"
        setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
    swarmops engine-ready 90 || die "dockerd did not start; see /var/log/dockerd.log"
}
