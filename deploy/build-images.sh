#!/usr/bin/env bash
# Build every image the stack uses, offline, under our own names:
#   dockercoins-base:bookworm  Debian minbase + python3, venv, redis-server
#                              (debootstrap + docker import; only when missing)
#   dockercoins:1.0 / 1.1 / bugged / slow / flaky   the app (deploy/Dockerfile targets)
#   dockercoins-redis:1.0      Debian's redis-server (deploy/Dockerfile.redis)
#   dockercoins-postgres:1.0   Debian's postgresql-15 (deploy/Dockerfile.postgres)
#   dockercoins-prometheus:1.0 Debian's prometheus (deploy/Dockerfile.prometheus)
# Safe to re-run: the base image and the wheelhouse are made only when missing
# or out of date, and Docker's build cache makes unchanged images instant.
#
# Environment:
#   BASE_IMAGE       base for all images (dockercoins-base:bookworm). Where a
#                    registry is reachable, BASE_IMAGE=python:3.11-slim works for
#                    the app; the Redis image needs a base with redis-server,
#                    REDIS_BASE_IMAGE (default: BASE_IMAGE).
#   DOCKERCOINS_IMAGE  repository of the app image (dockercoins)
#   REDIS_IMAGE      name:tag of the Redis image (dockercoins-redis:1.0)
#   POSTGRES_IMAGE   name:tag of the PostgreSQL image (dockercoins-postgres:1.0)
#   PROMETHEUS_IMAGE name:tag of the Prometheus image (dockercoins-prometheus:1.0)
#   DEBIAN_MIRROR    debootstrap mirror (default: from /etc/apt sources)
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DOCKERCOINS_ROOT"

BASE_IMAGE="${BASE_IMAGE:-dockercoins-base:bookworm}"
REDIS_BASE_IMAGE="${REDIS_BASE_IMAGE:-$BASE_IMAGE}"
DOCKERCOINS_IMAGE="${DOCKERCOINS_IMAGE:-dockercoins}"
REDIS_IMAGE="${REDIS_IMAGE:-dockercoins-redis:1.0}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-dockercoins-postgres:1.0}"
PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-dockercoins-prometheus:1.0}"
WHEELS="$BUILD_DIR/wheels"
PIP="${PIP:-$DOCKERCOINS_ROOT/.venv/bin/pip}"
# Both builders understand our Dockerfiles; the legacy one is what a bare
# docker.io without buildx has.
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

timed() {
    local what="$1" start
    shift
    start=$(now_s)
    "$@"
    log "$what: $(( $(now_s) - start ))s"
}

debian_mirror() {
    local uri
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    uri="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)"
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(grep -E '^deb ' /etc/apt/sources.list | sed 's/\[[^]]*\]//' \
            | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

build_base_image() {
    local rootfs mirror
    [ "$(id -u)" -eq 0 ] || die "building $BASE_IMAGE needs root (debootstrap)"
    command -v debootstrap >/dev/null || die "debootstrap is missing (deploy/bootstrap.sh installs it)"
    mirror="$(debian_mirror)"
    rootfs="$(mktemp -d /var/tmp/dockercoins-rootfs.XXXXXX)"
    # shellcheck disable=SC2064  # expand now: the trap must know this directory
    trap "rm -rf '$rootfs'" EXIT
    log "debootstrap bookworm from $mirror (a few minutes)"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,ca-certificates,redis-server \
        bookworm "$rootfs" "$mirror" >"$BUILD_DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $BUILD_DIR/debootstrap.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
}

ensure_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE: present"
        return
    fi
    case "$BASE_IMAGE" in
        dockercoins-base:*) timed "base image $BASE_IMAGE built" build_base_image ;;
        # Someone else's image (python:3.11-slim): only a registry has it.
        *) timed "base image $BASE_IMAGE pulled" docker pull "$BASE_IMAGE" ;;
    esac
}

# The wheelhouse is keyed by the requirements and the host Python's version:
# wheels for compiled packages (hiredis) must match the image's Python 3.11.
ensure_wheelhouse() {
    local stamp key
    [ -x "$PIP" ] || die "$PIP is missing (deploy/bootstrap.sh creates .venv)"
    key="$(cat requirements.txt deploy/requirements-wheelhouse.txt; "$PIP" --version)"
    key="$(sha256sum <<<"$key" | cut -d' ' -f1)"
    stamp="$WHEELS/.stamp"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
        log "wheelhouse: up to date"
        return
    fi
    rm -rf "$WHEELS"
    mkdir -p "$WHEELS"
    timed "wheelhouse built" "$PIP" wheel --quiet -r deploy/requirements-wheelhouse.txt -w "$WHEELS"
    echo "$key" >"$stamp"
}

vendor_static() {
    if [ -x deploy/vendor-static.sh ]; then
        timed "static vendor files" deploy/vendor-static.sh
    else
        warn "deploy/vendor-static.sh is missing: the chart's library will not be in the image"
    fi
}

# docker_build LOGNAME ARGS...: the build's output goes to a log, shown only
# when the build fails.
docker_build() {
    local logfile="$BUILD_DIR/build-$1.log"
    shift
    if ! docker build "$@" >"$logfile" 2>&1; then
        tail -n 40 "$logfile" >&2
        die "docker build failed; full log: $logfile"
    fi
}

build_app() {
    local target="$1" tag="$2"
    timed "image $DOCKERCOINS_IMAGE:$tag" docker_build "$tag" -f deploy/Dockerfile \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --target "$target" \
        -t "$DOCKERCOINS_IMAGE:$tag" .
}

build_redis() {
    # No context needed: the Dockerfile comes on stdin.
    timed "image $REDIS_IMAGE" docker_build redis \
        --build-arg BASE_IMAGE="$REDIS_BASE_IMAGE" -t "$REDIS_IMAGE" - \
        <deploy/Dockerfile.redis
}

# debian_debs DIR PACKAGE: PACKAGE and what it needs beyond the base image,
# downloaded on the host by apt against the BASE image's package list (not the
# host's), so the image build itself needs no network.
debian_debs() {
    local dir="$1" package="$2" status="$BUILD_DIR/base-dpkg-status"
    local logfile="$BUILD_DIR/$package-debs.log"
    [ "$(id -u)" -eq 0 ] || die "downloading $package's packages needs root (apt-get)"
    docker run --rm --entrypoint cat "$BASE_IMAGE" /var/lib/dpkg/status >"$status"
    mkdir -p "$dir/partial"
    apt-get install --download-only -y -qq --no-install-recommends \
        -o Dir::State::status="$status" -o Dir::Cache::archives="$dir" \
        -o Debug::NoLocking=1 "$package" >"$logfile" 2>&1 \
        || { apt-get update -qq && apt-get install --download-only -y -qq --no-install-recommends \
                -o Dir::State::status="$status" -o Dir::Cache::archives="$dir" \
                -o Debug::NoLocking=1 "$package" >"$logfile" 2>&1; } \
        || die "could not download $package's packages; see $logfile"
    rm -rf "$dir/partial" "$dir/lock"
}

build_postgres() {
    local context="$BUILD_DIR/postgres"
    debian_debs "$context" postgresql-15
    cp deploy/postgres-entrypoint.sh "$context/"
    timed "image $POSTGRES_IMAGE" docker_build postgres \
        --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$POSTGRES_IMAGE" \
        -f deploy/Dockerfile.postgres "$context"
}

build_prometheus() {
    local context="$BUILD_DIR/prometheus"
    debian_debs "$context" prometheus
    cp deploy/prometheus.yml "$context/"
    timed "image $PROMETHEUS_IMAGE" docker_build prometheus \
        --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$PROMETHEUS_IMAGE" \
        -f deploy/Dockerfile.prometheus "$context"
}

main() {
    local start
    start=$(now_s)
    ensure_docker
    mkdir -p "$BUILD_DIR"
    ensure_base_image
    ensure_wheelhouse
    vendor_static
    build_app release 1.0
    build_app v1-1 1.1
    build_app bugged bugged
    build_app slow slow
    build_app flaky flaky
    build_redis
    build_postgres
    build_prometheus
    # Intermediate images of old builds; recent ones stay as build cache.
    docker image prune --force --filter until=24h >/dev/null || true
    log "images ready in $(( $(now_s) - start ))s:"
    docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
        | grep -E "^($DOCKERCOINS_IMAGE|${REDIS_IMAGE%%:*}|${POSTGRES_IMAGE%%:*}|${PROMETHEUS_IMAGE%%:*}|${BASE_IMAGE%%:*}):" | sed 's/^/  /' >&2 || true
}

main "$@"
