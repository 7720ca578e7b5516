#!/usr/bin/env bash
# A real multi-node swarm on this one machine: N plain dockerd processes, each
# in its own network, mount and UTS namespace, joined over a bridge into one
# swarm. No engine runs inside a container. This script makes the machine's
# part (namespaces, bridge, engines); joining the engines into a swarm and
# loading the images is deploy/swarmops/lab.py's.
#
#   deploy/lab.sh up N          form an N-node lab (2..5) and load the images
#   deploy/lab.sh down          stop it all: engines (by pid), forwarders,
#                               namespaces, bridge, firewall rule, /etc/netns
#   deploy/lab.sh status        the nodes, their addresses and roles
#   deploy/lab.sh active        exit 0 when the lab's manager answers
#   deploy/lab.sh check         exit 0 when a lab can be made here (else why)
#   deploy/lab.sh host [NODE]   print DOCKER_HOST for a node (default: node-0)
#   deploy/lab.sh leftovers     print what of the lab is still on the machine
#   deploy/lab.sh forward PORT...   127.0.0.1:PORT -> whichever node serves it
#   deploy/lab.sh stop-node NODE    TERM one node's engine (a node lost)
#   deploy/lab.sh start-node NODE   start it again on its data root (it rejoins)
#   deploy/lab.sh hosts | nodes | addr NODE | reload
#                     every node's DOCKER_HOST; N; a node's address; reload images
#
# Several labs can coexist (a user's and a test run's) under different ids:
#   LAB_ID   short name, 2..4 letters (dc): prefixes namespaces dc-node-0...,
#            the bridge dcbr0, veths dcv0...
#   LAB_NET  the lab's private /24 as three octets (10.213.0); must be free
#   LAB_IMAGES   images loaded into every engine (deploy/swarmops/images.py)
# Safe to re-run: `up` first removes any leftovers of an earlier lab of the
# same id (a killed run leaves namespaces, the bridge and the rule behind).
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Exported: deploy/swarmops asks this script back for the nodes' sockets.
export LAB_ID="${LAB_ID:-dc}"
export LAB_NET="${LAB_NET:-10.213.0}"
export LAB_DIR="${LAB_DIR:-/var/lib/dockercoins-lab/$LAB_ID}"
BRIDGE="${LAB_ID}br0"

usage() { sed -n '8,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

netns() { echo "$LAB_ID-node-$1"; }
node_addr() { echo "$LAB_NET.$(( 10 + $1 ))"; }
node_dir() { echo "$LAB_DIR/node-$1"; }
node_sock() { echo "$(node_dir "$1")/docker.sock"; }
node_docker() { local i="$1"; shift; docker -H "unix://$(node_sock "$i")" "$@"; }
node_count() { cat "$LAB_DIR/nodes" 2>/dev/null || echo 0; }

# require_root_tools: what a lab needs of this machine, or die saying what
# is missing (the multi-node tests skip with that line).
require_root_tools() {
    [ "$(id -u)" -eq 0 ] || die "the lab needs root (namespaces, a bridge, a firewall rule)"
    local tool why
    for tool in ip iptables nsenter unshare socat dockerd; do
        command -v "$tool" >/dev/null \
            || die "$tool is missing: deploy/bootstrap.sh installs it (iproute2, iptables, util-linux, socat)"
    done
    why="$(unshare --net --mount --uts true 2>&1)" \
        || die "network namespaces cannot be made: $why"
}

# --- tear-down (also what `up` runs first) -------------------------------

# pids_of_lab: every process in one of the lab's network namespaces, plus
# engines whose data root is ours (an engine outlives its namespace's name
# when `ip netns del` ran first). Only processes this lab started match.
pids_of_lab() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$LAB_ID-node-[0-9]+$" || true); do
        ip netns pids "$ns" 2>/dev/null || true
    done
    for pid in $(pgrep -x dockerd 2>/dev/null || true); do
        { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "--data-root $LAB_DIR/" && echo "$pid"
    done
    cat "$LAB_DIR"/forward-*.pid 2>/dev/null || true
}

stop_pid() {
    local pid="$1" deadline
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(now_s) + ${2:-30} ))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(now_s)" -ge "$deadline" ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
}

stop_engines() {
    local i pid pids=()
    for i in $(seq 0 9); do
        pid="$(cat "$(node_dir "$i")/dockerd.pid" 2>/dev/null || true)"
        # A stale pid file can name a pid reused by someone else: act only on
        # a dockerd that runs on our data root.
        if [ -n "$pid" ] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null \
                | grep -q -- "--data-root $(node_dir "$i")/data"; then
            stop_pid "$pid" 40 &
            pids+=($!)
        fi
    done
    # What the engines left (containerd, shims, containers, forwarders).
    for pid in $(pids_of_lab | sort -u); do stop_pid "$pid" 10 & pids+=($!); done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
}

lab_down() {
    local ns i
    [ "$(id -u)" -eq 0 ] || die "the lab needs root"
    stop_engines
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$LAB_ID-node-[0-9]+$" || true); do
        ip netns del "$ns" 2>/dev/null || warn "could not delete namespace $ns"
    done
    rm -rf /etc/netns/"$LAB_ID"-node-*
    for i in $(seq 0 9); do ip link del "${LAB_ID}v$i" 2>/dev/null || true; done
    ip link del "$BRIDGE" 2>/dev/null || true
    while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
    # The engines' cgroups (--cgroup-parent) are empty once they stopped.
    find /sys/fs/cgroup -depth -type d -path "*/$LAB_ID-node-*" -exec rmdir {} + 2>/dev/null || true
    # Unmount whatever an engine left mounted under its data root before the
    # data (images, volumes, the swarm's state) goes.
    if [ -d "$LAB_DIR" ]; then
        awk -v d="$LAB_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r \
            | xargs -r -n1 umount -l 2>/dev/null || true
        rm -rf "$LAB_DIR"
    fi
}

lab_leftovers() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$LAB_ID-node-[0-9]+$" | sed 's/^/namespace /' || true
    ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE"
    iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null && echo "firewall rule FORWARD -i $BRIDGE -o $BRIDGE"
    ls -d /etc/netns/"$LAB_ID"-node-* 2>/dev/null | sed 's/^/file /' || true
    pids_of_lab | sort -u | while read -r pid; do
        kill -0 "$pid" 2>/dev/null && echo "process $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60)"
    done
    [ -d "$LAB_DIR" ] && echo "directory $LAB_DIR (engines' data: images, volumes)"
    return 0
}

# --- forming the lab -----------------------------------------------------

check_net_free() {
    # Our own bridge's address is fine (a leftover that lab_down removes).
    if ip -4 addr | grep -v " $BRIDGE\$" | grep -q "inet $LAB_NET\."; then
        die "$LAB_NET.0/24 is in use on this machine (ip -4 addr): set LAB_NET to a free private /24"
    fi
}

make_network() {
    ip link add "$BRIDGE" type bridge
    ip addr add "$LAB_NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    # The host engine sets FORWARD's policy to DROP; the nodes talk over the bridge.
    iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
}

start_node() {
    local i="$1" ns dir addr
    ns="$(netns "$i")"; dir="$(node_dir "$i")"; addr="$(node_addr "$i")"
    ip netns add "$ns"
    ip link add "${LAB_ID}v$i" type veth peer name eth0 netns "$ns"
    ip link set "${LAB_ID}v$i" master "$BRIDGE" up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via "$LAB_NET.1"
    mkdir -p "/etc/netns/$ns" "$dir/data"
    # DNS pinned to the node's own address, where nothing answers: no query
    # ever leaves the machine.
    echo "nameserver $addr" >"/etc/netns/$ns/resolv.conf"
    start_engine "$i"
}

# start_engine I: node I's dockerd in the node's namespace, on its data root
# (a node lost with stop-node comes back with its swarm state: it rejoins).
start_engine() {
    local i="$1" ns dir addr
    ns="$(netns "$i")"; dir="$(node_dir "$i")"; addr="$(node_addr "$i")"
    # nsenter + unshare, not `ip netns exec` (it remounts /sys and dockerd
    # dies with "Devices cgroup isn't mounted"); a tmpfs on /run so that the
    # controller's bind mount of /var/run/docker.sock is this node's engine.
    # setsid: the engine must outlive `make up`'s process group.
    setsid nsenter --net="/run/netns/$ns" unshare -m -u --propagation private sh -c "
        hostname node-$i
        mount -t tmpfs tmpfs /run
        mount --bind /etc/netns/$ns/resolv.conf /etc/resolv.conf
        exec dockerd --data-root $dir/data --exec-root /run/docker --pidfile /run/docker.pid \
            -H unix:///run/docker.sock -H unix://$dir/docker.sock \
            --cgroup-parent /$ns --dns $addr" >>"$dir/dockerd.log" 2>&1 </dev/null &
    # The exec chain (setsid, nsenter, unshare, sh all exec) makes $! the dockerd.
    echo $! >"$dir/dockerd.pid"
}

engine_answers() { node_docker "$1" info >/dev/null 2>&1; }

lab_up() {
    local n="$1" i start
    [[ "$n" =~ ^[2-5]$ ]] || die "NODES must be 2..5 (got '$n')"
    require_root_tools
    start=$(now_s)
    lab_down
    check_net_free
    mkdir -p "$LAB_DIR"
    make_network
    for i in $(seq 0 $(( n - 1 ))); do start_node "$i"; done
    echo "$n" >"$LAB_DIR/nodes"
    swarmops lab-form "$n" || die "the lab's swarm did not form; see $LAB_DIR/node-*/dockerd.log"
    swarmops lab-load
    log "lab $LAB_ID: $n nodes in $(( $(now_s) - start ))s"
}

lab_status() {
    local n i
    n="$(node_count)"
    [ "$n" -gt 0 ] || { echo "no lab (deploy/lab.sh up N)"; return 1; }
    echo "Lab '$LAB_ID': $n nodes on $LAB_NET.0/24 (bridge $BRIDGE)"
    for i in $(seq 0 $(( n - 1 ))); do
        printf '  node-%s  %-12s  %s\n' "$i" "$(node_addr "$i")" "DOCKER_HOST=unix://$(node_sock "$i")"
    done
    node_docker 0 node ls --format '  {{.Hostname}}: {{.Status}} {{.Availability}} {{if .ManagerStatus}}manager ({{.ManagerStatus}}){{else}}worker{{end}}' 2>/dev/null || true
}

# forward PORT...: a socat per port on 127.0.0.1 whose every connection goes
# to the first node that accepts on that port (host-mode ports exist only on
# the nodes running the task, which moves when a node is lost).
forward() {
    local port pid addrs
    addrs="$(for i in $(seq 0 $(( $(node_count) - 1 ))); do node_addr "$i"; done | tr '\n' ' ')"
    for port in "$@"; do
        pid="$(cat "$LAB_DIR/forward-$port.pid" 2>/dev/null || true)"
        [ -n "$pid" ] && stop_pid "$pid" 5
        setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" \
            "EXEC:$DEPLOY_DIR/lab-connect.sh $port $addrs" \
            >"$LAB_DIR/forward-$port.log" 2>&1 </dev/null &
        echo $! >"$LAB_DIR/forward-$port.pid"
    done
    sleep 0.5
    for port in "$@"; do
        pid="$(cat "$LAB_DIR/forward-$port.pid" 2>/dev/null || true)"
        if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
            warn "127.0.0.1:$port is taken (the host's own stack?): use the node addresses instead"
            rm -f "$LAB_DIR/forward-$port.pid"
        fi
    done
}

stop_node() {
    local i="${1#node-}" pid
    pid="$(cat "$(node_dir "$i")/dockerd.pid" 2>/dev/null)" || die "no node-$i in lab $LAB_ID"
    stop_pid "$pid" 40
}

# start-node NODE: bring a node stopped by stop-node back (its engine only: the
# namespace, veth and data root outlived it). Returns once the engine answers;
# the swarm then sees the node Ready again within seconds (deploy/labs.py waits).
start_node_again() {
    local i="${1#node-}" pid deadline
    [ -d "$(node_dir "$i")/data" ] && ip netns list | grep -q "^$(netns "$i")\b" \
        || die "no node-$i in lab $LAB_ID"
    pid="$(cat "$(node_dir "$i")/dockerd.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        die "node-$i's engine is still running (pid $pid)"
    fi
    start_engine "$i"
    deadline=$(( $(now_s) + 60 ))
    until engine_answers "$i"; do
        [ "$(now_s)" -lt "$deadline" ] || die "node-$i's engine did not answer within 60s; see $(node_dir "$i")/dockerd.log"
        sleep 0.5
    done
}

main() {
    local command="${1:-}"
    [ -n "$command" ] || usage
    shift
    case "$command" in
        up) [ $# -eq 1 ] || usage; lab_up "$1" ;;
        down) lab_down ;;
        status) lab_status ;;
        active) [ "$(node_count)" -gt 0 ] && engine_answers 0 ;;
        check) require_root_tools ;;
        host) n="${1:-0}"; echo "unix://$(node_sock "${n#node-}")" ;;
        leftovers) lab_leftovers ;;
        forward) forward "$@" ;;
        stop-node) [ $# -eq 1 ] || usage; stop_node "$1" ;;
        start-node) [ $# -eq 1 ] || usage; start_node_again "$1" ;;
        addr) node_addr "${1#node-}" ;;
        reload) swarmops lab-load ;;
        hosts) for i in $(seq 0 $(( $(node_count) - 1 ))); do echo "unix://$(node_sock "$i")"; done ;;
        nodes) node_count ;;
        *) usage ;;
    esac
}

main "$@"
