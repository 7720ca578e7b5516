#!/usr/bin/env bash
# `make up`: from a fresh Debian machine (as root) to DockerCoins mining on a
# single-node swarm. Safe to re-run: each step does only what is missing, and
# re-deploying updates the stack in place (services go back to the stack file,
# except a service's mode: one made global stays global).
#   STACK_NAME (dockercoins), ports and tags: see deploy/docker-compose.yml.
#   NODES=N (2..5): on a lab of N engines on this machine instead (deploy/lab.sh),
#   reached from the host through forwarders on 127.0.0.1:8000-8002.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DOCKERCOINS_ROOT"

STACK_NAME="${STACK_NAME:-dockercoins}"
ADMIN_USER="${ADMIN_USER:-admin}"

NODES="${NODES:-1}"

# webui_exec ARGS...: run a command in the stack's running webui container,
# on whichever node runs it.
webui_exec() {
    local found
    found="$(service_container "${STACK_NAME}_webui")" \
        || die "no running webui container for stack $STACK_NAME"
    DOCKER_HOST="${found%% *}" docker exec -i "${found#* }" "$@"
}

# create_admin: a superuser with a generated password, printed this once.
# Its existence is the only state: re-runs say so and leave it alone.
create_admin() {
    local password found
    if webui_exec python manage.py shell -c \
        "import sys; from django.contrib.auth import get_user_model as m; \
sys.exit(0 if m().objects.filter(username='$ADMIN_USER').exists() else 1)" >/dev/null 2>&1; then
        echo "Admin user '$ADMIN_USER' already exists (its password was printed when it was created;"
        found="$(service_container "${STACK_NAME}_webui")"
        echo "  reset it with: DOCKER_HOST=${found%% *} docker exec -it ${found#* } python manage.py changepassword $ADMIN_USER)"
        return
    fi
    password="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
    # The password goes in on stdin: never in a command line that `ps` shows.
    webui_exec python manage.py shell -c \
        "import sys; from django.contrib.auth import get_user_model as m; \
m().objects.create_superuser('$ADMIN_USER', '$ADMIN_USER@localhost', sys.stdin.readline().strip())" \
        <<<"$password" >/dev/null
    echo "Created admin user '$ADMIN_USER' with password: $password"
    echo "  (shown this once; it is not stored anywhere in clear)"
}

# restart_rebuilt: a re-deploy with the same tags leaves the services alone
# even when build-images.sh just rebuilt those tags (without a registry there
# is no digest in the spec to change). Restart the services whose running
# containers are not on the image their tag names now.
restart_rebuilt() {
    local service image want container have host
    for host in $(engine_hosts); do
    # By name: `service ls -q` prints truncated ids, and a container's
    # service.id label holds the full one, so a filter on the id matched
    # nothing and no service was ever restarted.
    for service in $(docker service ls --format '{{.Name}}' --filter "label=$STACK_LABEL=$STACK_NAME"); do
        image="$(docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$service")"
        want="$(docker image inspect -f '{{.Id}}' "${image%@*}" 2>/dev/null)" || continue
        for container in $(DOCKER_HOST="$host" docker ps -q --filter "label=com.docker.swarm.service.name=$service"); do
            have="$(DOCKER_HOST="$host" docker inspect -f '{{.Image}}' "$container")"
            if [ "$have" != "$want" ]; then
                log "restarting $service on the rebuilt ${image%@*}"
                docker service update --force --detach --quiet "$service" >/dev/null
                sleep 2  # the update shows in UpdateStatus, which stack_wait reads
                break
            fi
        done
    done
    done
}

# lab_up: the lab of $NODES engines, kept when it is up with that many nodes
# (a re-run only reloads the images, which may have been rebuilt); formed
# anew otherwise, leftovers of a killed run included.
lab_up() {
    export LAB_ID="${LAB_ID:-dc}"
    if deploy/lab.sh active && [ "$(deploy/lab.sh nodes)" = "$NODES" ]; then
        log "lab $LAB_ID: $NODES nodes up already; reloading the images"
        deploy/lab.sh reload
    else
        deploy/lab.sh up "$NODES"
    fi
    DOCKER_HOST="$(deploy/lab.sh host 0)"
    export DOCKER_HOST
}

print_lab() {
    local on=1
    [ "$NODES" -ge 3 ] || on=0  # with 2 nodes, node-1 is a worker: no swarm API there
    echo
    deploy/lab.sh status
    deploy/lab.sh forward "${WEBUI_PORT:-8000}" "${RNG_PORT:-8001}" "${HASHER_PORT:-8002}" "${PROMETHEUS_PORT:-9090}"
    echo "  on node-$on:  DOCKER_HOST=$(deploy/lab.sh host "$on") docker service ps ${STACK_NAME}_worker"
    echo "  web UI on a node's own address: http://$(deploy/lab.sh addr "$(webui_node)"):${WEBUI_PORT:-8000}/"
}

webui_node() {
    docker service ps --filter desired-state=running --format '{{.Node}}' "${STACK_NAME}_webui" | head -n1
}

main() {
    local start
    start=$(now_s)
    [[ "$NODES" =~ ^[1-5]$ ]] || die "NODES must be 1 (the host's engine) or 2..5 (a lab), not '$NODES'"
    deploy/bootstrap.sh
    deploy/build-images.sh
    [ "$NODES" -gt 1 ] && lab_up
    log "deploying stack $STACK_NAME${DOCKER_HOST:+ on $DOCKER_HOST}"
    stack_deploy "$STACK_NAME" >/dev/null
    restart_rebuilt
    stack_wait "$STACK_NAME" "${UP_TIMEOUT:-300}" || die "the stack did not converge (docker stack ps $STACK_NAME)"
    # The webui migrates when it starts; once more is a no-op that makes sure.
    webui_exec python manage.py migrate_locked >/dev/null
    echo
    create_admin
    [ "$NODES" -gt 1 ] && print_lab
    cat <<MSG

DockerCoins is running as stack '$STACK_NAME' (ready in $(( $(now_s) - start ))s):
  web UI      http://localhost:${WEBUI_PORT:-8000}/
  admin       http://localhost:${WEBUI_PORT:-8000}/admin/
  rng         http://localhost:${RNG_PORT:-8001}/
  hasher      http://localhost:${HASHER_PORT:-8002}/
  prometheus  http://localhost:${PROMETHEUS_PORT:-9090}/  (every role's /metrics)
  services    docker stack services $STACK_NAME
  rollouts    make rollout ARGS='status'
  stop        make down
MSG
    return 0
}

main "$@"
