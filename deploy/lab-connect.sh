#!/bin/sh
# deploy/lab.sh's forwarder runs this for each connection to 127.0.0.1:PORT:
#   lab-connect.sh PORT ADDRESS...
# It joins the connection to the first node address that accepts on PORT. A
# host-mode published port exists only on the nodes that run the service's
# task, and the task moves when its node is lost: so ask at each connection.
port="$1"
shift
for addr in "$@"; do
    if socat -u /dev/null "TCP:$addr:$port,connect-timeout=0.5" 2>/dev/null; then
        exec socat STDIO "TCP:$addr:$port,connect-timeout=2"
    fi
done
echo "no lab node accepts on port $port" >&2
exit 1
