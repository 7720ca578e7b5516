# Shared shell functions for deploy/*.sh, the Makefile, the tests and bench.
# Source it (`. deploy/lib.sh`); every wait in here has a deadline.

# shellcheck shell=bash
DOCKERCOINS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY_DIR="$DOCKERCOINS_ROOT/deploy"
BUILD_DIR="$DEPLOY_DIR/.build"
STACK_LABEL="com.docker.stack.namespace"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# now_s: seconds since the epoch (for deadlines and the timings we print).
now_s() { date +%s; }

# wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND once a second until it
# succeeds; fail naming DESCRIPTION when SECONDS pass first.
wait_for() {
    local timeout="$1" what="$2" deadline
    shift 2
    deadline=$(( $(now_s) + timeout ))
    until "$@" >/dev/null 2>&1; do
        if [ "$(now_s)" -ge "$deadline" ]; then
            warn "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 1
    done
}

docker_ready() { docker info >/dev/null 2>&1; }

# ensure_docker: start dockerd when no engine answers (as the shared notes do),
# then wait for it. A systemd machine would use `systemctl start docker`; these
# machines have no init system, so we fall back to running dockerd ourselves.
ensure_docker() {
    docker_ready && return 0
    command -v dockerd >/dev/null || die "dockerd is not installed (run deploy/bootstrap.sh as root)"
    if command -v systemctl >/dev/null && systemctl start docker 2>/dev/null; then
        log "started docker with systemctl"
    else
        log "starting dockerd (log: /var/log/dockerd.log)"
        setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
    wait_for 90 "dockerd to answer" docker_ready \
        || die "dockerd did not start; see /var/log/dockerd.log"
}

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }

# ensure_swarm: a single-node swarm on loopback unless this engine is already
# in one (then we use it as it is: a manager of a real cluster works too).
ensure_swarm() {
    local state
    state="$(swarm_state)"
    case "$state" in
        active) return 0 ;;
        inactive) ;;
        pending|locked|error)
            die "swarm state is '$state': fix it (docker swarm leave --force) and re-run" ;;
        *) die "cannot read the swarm state (docker info)" ;;
    esac
    log "creating a single-node swarm (docker swarm init --advertise-addr 127.0.0.1)"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    wait_for 30 "the swarm to become active" test "$(swarm_state)" = active
}

# has_ipvs: without IPVS (some kernels, many CI machines) the VIPs and the
# ingress routing mesh pass no traffic; the no-ipvs override is needed then.
# The module is loaded by `swarm init`, so ask after ensure_swarm.
has_ipvs() { [ -e /proc/net/ip_vs ]; }

# compose_args: the -c arguments for `docker stack deploy`.
compose_args() {
    printf -- '-c\n%s\n' "$DEPLOY_DIR/docker-compose.yml"
    if ! has_ipvs; then
        printf -- '-c\n%s\n' "$DEPLOY_DIR/docker-compose.no-ipvs.yml"
    fi
}

# ensure_secret_key: the file behind the stack's `secret_key` Swarm secret.
# Made once and kept: a Swarm secret cannot change while a stack uses it.
ensure_secret_key() {
    local file="$BUILD_DIR/secret_key"
    [ -s "$file" ] && return 0
    mkdir -p "$BUILD_DIR"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file")
    log "generated $file (the stack's SECRET_KEY secret)"
}

# ensure_db_password: the file behind the stack's `db_password` secret (the
# PostgreSQL role's password), made once like the SECRET_KEY.
ensure_db_password() {
    local file="$BUILD_DIR/db_password"
    [ -s "$file" ] && return 0
    mkdir -p "$BUILD_DIR"
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$file")
    log "generated $file (the stack's PostgreSQL password secret)"
}

# ensure_db_label: PostgreSQL's volume is node-local, so its service is pinned
# to the node labelled dockercoins.db=true. Label this engine's node when no
# node is (the lab labels node-0 itself).
ensure_db_label() {
    local labelled
    labelled="$(docker node ls -q --filter node.label=dockercoins.db=true 2>/dev/null)" || return 0
    [ -n "$labelled" ] && return 0
    docker node update --label-add dockercoins.db=true \
        "$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null
    log "labelled this node dockercoins.db=true (the database's volume lives here)"
}

# stack_deploy NAME: deploy or update the stack from our compose files, with
# the environment (tags, ports, replicas) as the caller set it.
stack_deploy() {
    local name="$1" args=() override
    ensure_secret_key
    ensure_db_password
    ensure_db_label
    mapfile -t args < <(compose_args)
    override="$(live_modes_override "$name")" || exit 1
    [ -n "$override" ] && args+=(-c "$override")
    has_ipvs || log "no IPVS on this kernel: deploying with docker-compose.no-ipvs.yml"
    # Newer CLIs ask for --detach explicitly (and print a notice without it);
    # we wait ourselves, with stack_wait.
    if docker stack deploy --help 2>/dev/null | grep -q -- '--detach'; then
        args+=(--detach=true)
    fi
    # --resolve-image never: our images are local, there is no registry to ask.
    STACK_NAME="$name" WORKER_TAG="${WORKER_TAG:-${DOCKERCOINS_TAG:-1.0}}" \
        docker stack deploy --prune --resolve-image never \
        "${args[@]}" "$name"
}

# stack_pending NAME: print each service of the stack that is not converged
# (running tasks != desired, or an update still rolling); succeed
# only when there are services and all converged. Health checks count: Swarm
# reports a task as running only once its container is healthy.
stack_pending() {
    local name="$1" out ids
    out="$(docker service ls --filter "label=$STACK_LABEL=$name" \
        --format '{{.ID}} {{.Name}} {{.Replicas}}')" || return 1
    [ -n "$out" ] || { echo "(no services)"; return 1; }
    mapfile -t ids < <(awk '{print $1}' <<<"$out")
    {
        awk '{ split($3, r, "/"); if (r[1] != r[2]) print $2, $3 }' <<<"$out"
        docker service inspect --format \
            '{{.Spec.Name}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${ids[@]}" \
            | awk '$2 == "updating" || $2 == "rollback_started"'
    } | awk '{ print } END { exit NR > 0 }'
}

# stack_wait NAME [SECONDS]: wait until every service of the stack converged.
stack_wait() {
    local name="$1" timeout="${2:-300}" deadline
    deadline=$(( $(now_s) + timeout ))
    until stack_pending "$name" >/dev/null; do
        if [ "$(now_s)" -ge "$deadline" ]; then
            warn "stack $name did not converge within ${timeout}s:"
            stack_pending "$name" >&2 || true
            docker stack ps --no-trunc --format \
                '{{.Name}} {{.Image}} {{.CurrentState}} {{.Error}}' "$name" >&2 || true
            return 1
        fi
        sleep 2
    done
    log "stack $name converged"
}

# engine_hosts: the DOCKER_HOST of every engine that may run the stack's
# containers: the lab's nodes when LAB_ID names a lab that is up (make up
# NODES=N), else the current engine alone.
engine_hosts() {
    if [ -n "${LAB_ID:-}" ] && "$DEPLOY_DIR/lab.sh" active 2>/dev/null; then
        "$DEPLOY_DIR/lab.sh" hosts
    else
        echo "${DOCKER_HOST:-unix:///var/run/docker.sock}"
    fi
}

# service_container SERVICE: "DOCKER_HOST CONTAINER" of one running container
# of the swarm service SERVICE, on whichever engine (node) runs it.
service_container() {
    local host container
    for host in $(engine_hosts); do
        container="$(DOCKER_HOST="$host" docker ps -q --filter status=running \
            --filter "label=com.docker.swarm.service.name=$1" 2>/dev/null | head -n1)"
        if [ -n "$container" ]; then echo "$host $container"; return 0; fi
    done
    return 1
}

# live_modes_override NAME: a compose override that keeps each service's live
# mode. An operator may have made a service global (the workshop's step 4,
# from the admin or `manage.py rollout`); the engine refuses to change a
# service's mode in place ("service mode change is not allowed"), so a
# re-deploy keeps it. Prints the override's path ("" when none is needed);
# fails with one line when the stack file pins replicas of a global service.
live_modes_override() {
    local name="$1" file="$BUILD_DIR/live-modes-$1.yml" service short found=""
    mkdir -p "$BUILD_DIR"
    printf 'version: "3.8"\nservices:\n' >"$file"
    for service in $(docker service ls --filter "label=$STACK_LABEL=$name" --filter mode=global \
            --format '{{.Name}}' 2>/dev/null); do
        short="${service#"${name}"_}"
        if [ "$short" = worker ]; then
            die "service $service is global in the swarm but the stack file sets its replicas: make it replicated first (make rollout ARGS='apply $short --mode replicated --confirm-recreate') and re-run"
        fi
        printf '  %s:\n    deploy:\n      mode: global\n' "$short" >>"$file"
        found=1
        log "keeping $service global, as it runs now (the engine cannot change a mode in place)"
    done
    [ -n "$found" ] && echo "$file"
    return 0
}

stack_leftovers() {
    local name="$1"
    {
        docker service ls -q --filter "label=$STACK_LABEL=$name"
        docker ps -aq --filter "label=$STACK_LABEL=$name"
        docker network ls -q --filter "label=$STACK_LABEL=$name"
        docker secret ls -q --filter "label=$STACK_LABEL=$name"
    } 2>/dev/null
}

# stack_rm NAME [--volumes]: remove the stack and wait until its services,
# containers, networks and secrets are gone (`docker stack rm` returns before
# that, and a network still in use is left behind). --volumes also removes its
# named volumes (the SQLite database): test stacks use it, `make down` not.
stack_rm() {
    local name="$1" volumes="${2:-}" deadline
    deadline=$(( $(now_s) + 180 ))
    docker stack rm "$name" >/dev/null 2>&1 || true
    while [ -n "$(stack_leftovers "$name")" ]; do
        if [ "$(now_s)" -ge "$deadline" ]; then
            warn "stack $name: left behind after 180s:"
            stack_leftovers "$name" >&2
            return 1
        fi
        # Networks and secrets whose services are gone but were skipped by
        # `stack rm` (still in use at that moment): remove them again.
        if [ -z "$(docker ps -aq --filter "label=$STACK_LABEL=$name")" ]; then
            docker stack rm "$name" >/dev/null 2>&1 || true
        fi
        sleep 1
    done
    if [ "$volumes" = "--volumes" ]; then
        docker volume ls -q --filter "label=$STACK_LABEL=$name" \
            | xargs -r docker volume rm >/dev/null || return 1
    fi
    log "stack $name removed"
}

# Test and bench stacks register their owner's PID here (tests/stacks.py), so
# a prune spares the stacks of a test run that is still going on next to us.
STACK_OWNERS_DIR="${STACK_OWNERS_DIR:-/tmp/dockercoins-stacks}"

# prune_test_stacks: remove test and bench stacks (and their volumes) whose
# run was killed before it could clean up: no live owner process.
prune_test_stacks() {
    local name owner
    for name in $(docker stack ls --format '{{.Name}}' 2>/dev/null \
            | grep -E '^dockercoins-(test|bench)-' || true); do
        owner="$(cat "$STACK_OWNERS_DIR/$name" 2>/dev/null || true)"
        if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then
            log "keeping stack $name: its test run (pid $owner) is still going"
            continue
        fi
        log "removing stale stack $name"
        stack_rm "$name" --volumes || true
        rm -f "$STACK_OWNERS_DIR/$name"
    done
    # Volumes of stacks that were removed, but not their volumes.
    for name in $(docker volume ls -q 2>/dev/null \
            | sed -n 's/^\(dockercoins-\(test\|bench\)-[0-9a-f]*\)_.*/\1/p' | sort -u); do
        docker stack ls --format '{{.Name}}' | grep -qx "$name" && continue
        docker volume ls -q --filter "label=$STACK_LABEL=$name" \
            | xargs -r docker volume rm >/dev/null 2>&1 || true
    done
}
