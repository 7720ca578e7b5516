#!/bin/bash
# The image's entrypoint: the first argument is the role.
#   rng | hasher | webui   gunicorn on 0.0.0.0:80 (webui migrates first)
#   (webui and controller migrate with `manage.py migrate_locked`: once, under
#   a PostgreSQL advisory lock, whichever replica starts first)
#   worker [ARGS]          python manage.py mine [ARGS]
#   controller [ARGS]      python manage.py rollout controller [ARGS]
#   healthcheck            the image's HEALTHCHECK: exit 0 when this container's
#                          role does its job (see check_health below)
#   anything else          run as given: `docker run IMAGE manage.py check --deploy`
# Extra gunicorn options go in GUNICORN_CMD_ARGS (read by gunicorn itself).
# bash, not sh: the HTTP health check needs its /dev/tcp.
set -eu

# The files a role and its health check share, declared here only: the role
# marker, and the heartbeat the worker's and the controller's loops touch.
# Health checks run in the container's environment, not in the one this
# script builds, so they learn the role from the marker.
RUN_DIR="${DOCKERCOINS_RUN_DIR:-/tmp}"
ROLE_FILE="$RUN_DIR/dockercoins-role"
HEARTBEAT_FILE="$RUN_DIR/dockercoins-alive"
HTTP_PORT="${HEALTHCHECK_PORT:-80}"
# rng answers one request at a time, so the probe can queue behind every
# worker's request (0.1 s each): leave it most of the engine's timeout.
HTTP_TIMEOUT="${HEALTHCHECK_TIMEOUT:-8}"
HEARTBEAT_MAX_AGE="${HEARTBEAT_MAX_AGE:-30}"

role="${1:-webui}"
[ "$#" -gt 0 ] && shift

mark() {
    export DOCKERCOINS_ROLE="$1"
    echo "$1" >"$ROLE_FILE" 2>/dev/null || true
}

# check_health: one line and exit 1 when unhealthy. Run by the engine every
# few seconds in every container, so no Python: bash and one `stat` at most
# (a Python start costs more than the exec itself; bench/healthcheck_cost.py).
check_health() {
    local name=""
    read -r name 2>/dev/null <"$ROLE_FILE" || true
    case "$name" in
        rng|hasher|webui) check_http || { echo "unhealthy $name"; exit 1; } ;;
        worker|controller) check_heartbeat || { echo "unhealthy $name"; exit 1; } ;;
        *) ;;  # started with another command: nothing to check
    esac
    exit 0
}

check_http() {
    local status=""
    exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" \
        || { echo "nothing listens on port $HTTP_PORT"; return 1; }
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r -t "$HTTP_TIMEOUT" _ status _ <&3 \
        || { echo "no answer to GET / within ${HTTP_TIMEOUT}s"; return 1; }
    [ "$status" = 200 ] || { echo "GET / answered ${status:-nothing}"; return 1; }
}

check_heartbeat() {
    local touched now
    touched="$(stat -c %Y "$HEARTBEAT_FILE" 2>/dev/null)" \
        || { echo "no heartbeat yet ($HEARTBEAT_FILE)"; return 1; }
    printf -v now '%(%s)T' -1
    if [ $((now - touched)) -gt "${HEARTBEAT_MAX_AGE%.*}" ]; then
        echo "heartbeat $HEARTBEAT_FILE is $((now - touched))s old (limit ${HEARTBEAT_MAX_AGE}s)"
        return 1
    fi
}

# watch_heartbeat: the controller's health check, run inside its container
# instead of by the engine (an exec there costs ~75 ms of CPU; a `stat` here
# every HEARTBEAT_WATCH seconds costs ~1 ms). After a start-up grace of
# HEARTBEAT_MAX_AGE, a stale heartbeat stops the process that this shell is
# about to become (exec keeps the pid), and Swarm's restart policy replaces
# the task, as it would an unhealthy container.
watch_heartbeat() {
    local target=$$
    (
        sleep "$HEARTBEAT_MAX_AGE"
        while sleep "${HEARTBEAT_WATCH:-5}"; do
            if ! problem="$(check_heartbeat)"; then
                echo "watchdog: $problem; stopping pid $target so Swarm replaces it" >&2
                kill -TERM "$target" 2>/dev/null
                sleep 15
                kill -KILL "$target" 2>/dev/null
                exit 0
            fi
        done
    ) </dev/null &
}

serve() {
    # Workers, worker class and timeouts per role: deploy/gunicorn.conf.py.
    exec gunicorn dockercoins.wsgi:application \
        --config /app/deploy/gunicorn.conf.py \
        --bind 0.0.0.0:80 \
        "$@"
}

# Before anything else: the engine may run this every few seconds.
[ "$role" = healthcheck ] && check_health
cd /app

# The controller's stack entry starts it as root for one reason: to learn the
# group of the mounted Docker socket, which differs from node to node. It then
# runs as the image's user with that group, like every other role: nothing it
# writes is root's. Without root (or without the socket) it simply runs as it
# is.

as_app_user_with_socket() {
    if [ "$(id -u)" -ne 0 ]; then
        exec "$@"
    fi
    socket_gid="$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 10001)"
    exec setpriv --reuid=10001 --regid=10001 --groups="$socket_gid" \
        --inh-caps=-all --no-new-privs -- "$@"
}

case "$role" in
    rng)
        # One worker, and a lock around each draw (mining.rng.views): one
        # request at a time per replica is the entropy ceiling the workshop's
        # scaling lesson is about.
        mark rng
        serve "$@"
        ;;
    hasher)
        mark hasher
        serve "$@"
        ;;
    webui)
        mark webui
        python manage.py migrate_locked
        # Webhook deliveries (webhooks/): a loop of its own beside gunicorn,
        # started again if it ever exits. A slow receiver delays only its own
        # subscription's deliveries, never a web request or the controller.
        if [ "${WEBHOOKS_DELIVER:-1}" = 1 ]; then
            (while true; do python manage.py webhooks deliver; sleep 5; done) </dev/null &
        fi
        serve "$@"
        ;;
    worker)
        mark worker
        WORKER_HEARTBEAT_FILE="$HEARTBEAT_FILE" exec python manage.py mine "$@"
        ;;
    controller)
        mark controller
        # Migrate first (it may wait for the database), then watch the heartbeat.
        (as_app_user_with_socket python manage.py migrate_locked)
        watch_heartbeat
        as_app_user_with_socket python manage.py rollout controller \
            --alive-file "$HEARTBEAT_FILE" "$@"
        ;;
    manage.py)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
