#!/bin/sh
# The stack's PostgreSQL: on first start make the cluster on the data volume
# with the role and database `dockercoins` (password from the Swarm secret in
# POSTGRES_PASSWORD_FILE), then run the server in the foreground.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
password_file="${POSTGRES_PASSWORD_FILE:-/run/secrets/db_password}"
[ -s "$password_file" ] || { echo "no password in $password_file" >&2; exit 1; }

# The line that lets the stack's network in is written last: a cluster
# without it is a first start that was cut short (the engine may stop a slow
# first start for its health check), so it is made again from scratch.
HBA_LINE="host all all all scram-sha-256"
if [ -s "$PGDATA/PG_VERSION" ] && ! grep -qx "$HBA_LINE" "$PGDATA/pg_hba.conf" 2>/dev/null; then
    echo "the first start was interrupted before it finished: initialising again"
    find "$PGDATA" -mindepth 1 -delete
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising the cluster in $PGDATA"
    initdb --pgdata="$PGDATA" --username=dockercoins --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    # The database exists before the server listens on the network.
    postgres --single -D "$PGDATA" -c listen_addresses='' template1 >/dev/null <<SQL
CREATE DATABASE dockercoins OWNER dockercoins;
SQL
    echo "$HBA_LINE" >>"$PGDATA/pg_hba.conf"
else
    # The Swarm secret is the password's one source of truth: a volume kept
    # from an earlier deploy (another checkout generated another
    # deploy/.build/db_password) takes the current one, instead of refusing
    # every connection of the webui and the controller.
    password="$(cat "$password_file")"
    escaped="$(printf '%s' "$password" | sed "s/'/''/g")"
    postgres --single -D "$PGDATA" -c listen_addresses='' dockercoins >/dev/null <<SQL
ALTER ROLE dockercoins PASSWORD '$escaped';
SQL
fi
# The root filesystem is read-only: the socket goes to the /tmp tmpfs.
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp \
    -c jit=off "$@"
