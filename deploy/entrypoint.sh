#!/bin/sh
# The image's entrypoint: the first argument is the role.
#   rng | hasher | webui   gunicorn on 0.0.0.0:80 (webui migrates first)
#   (webui and controller migrate with `manage.py migrate_locked`: once, under
#   a PostgreSQL advisory lock, whichever replica starts first)
#   worker [ARGS]          python manage.py mine [ARGS]
#   controller [ARGS]      python manage.py rollout controller [ARGS]
#   anything else          run as given: `docker run IMAGE manage.py check --deploy`
# Extra gunicorn options go in GUNICORN_CMD_ARGS (read by gunicorn itself).
set -eu

cd /app
role="${1:-webui}"
[ "$#" -gt 0 ] && shift

# deploy/healthcheck.py reads the role from here: health checks run in the
# container's environment, which does not have the DOCKERCOINS_ROLE set below.
mark() {
    export DOCKERCOINS_ROLE="$1"
    echo "$1" >/tmp/dockercoins-role 2>/dev/null || true
}

serve() {
    # Workers, worker class and timeouts per role: deploy/gunicorn.conf.py.
    exec gunicorn dockercoins.wsgi:application \
        --config /app/deploy/gunicorn.conf.py \
        --bind 0.0.0.0:80 \
        "$@"
}

# The controller's stack entry starts it as root for one reason: to learn the
# group of the mounted Docker socket, which differs from node to node. It then
# runs as the image's user with that group, so the SQLite files it shares with
# the webui stay owned by that user. Without root (or without the socket) it
# simply runs as it is.
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
        serve "$@"
        ;;
    worker)
        mark worker
        exec python manage.py mine "$@"
        ;;
    controller)
        mark controller
        as_app_user_with_socket sh -c 'python manage.py migrate_locked && exec "$@"' \
            controller python manage.py rollout controller "$@"
        ;;
    manage.py)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
