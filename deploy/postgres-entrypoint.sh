#!/bin/sh
# The stack's PostgreSQL: on first start make the cluster on the data volume
# with the role and database `dockercoins` (password from the Swarm secret in
# POSTGRES_PASSWORD_FILE), then run the server in the foreground.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
password_file="${POSTGRES_PASSWORD_FILE:-/run/secrets/db_password}"
[ -s "$password_file" ] || { echo "no password in $password_file" >&2; exit 1; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising the cluster in $PGDATA"
    initdb --pgdata="$PGDATA" --username=dockercoins --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    # The database exists before the server listens on the network.
    postgres --single -D "$PGDATA" -c listen_addresses='' template1 >/dev/null <<SQL
CREATE DATABASE dockercoins OWNER dockercoins;
SQL
fi
# The root filesystem is read-only: the socket goes to the /tmp tmpfs.
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp \
    -c jit=off "$@"
