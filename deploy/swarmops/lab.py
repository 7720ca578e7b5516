"""The multi-node lab's swarm. deploy/lab.sh makes the machine's part (the
namespaces, the bridge, one dockerd per node) and hands over here to join the
engines into one swarm and load the images; the rest of the code asks here
which engines the lab has."""

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from deploy.polling import wait_until
from deploy.swarmops import engine
from deploy.swarmops.images import lab_images
from deploy.swarmops.layout import BUILD_DIR, DB_NODE_LABEL, LAB_SH
from deploy.swarmops.procs import StackError, log, run

# Manager count as a production swarm chooses it: Raft needs a majority, so 3
# managers survive the loss of one and 2 would survive none (worse than 1).
MAX_MANAGERS = 3
NODE_TIMEOUT = 60


def lab_sh(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    capture: bool = True,
) -> str:
    """deploy/lab.sh's output (or straight to ours, not `capture`d);
    StackError when it fails."""
    return run([LAB_SH, *args], env=env, timeout=timeout, capture=capture)


def hosts(env: Mapping[str, str] | None = None) -> list[str]:
    """Every node's DOCKER_HOST, node-0 first."""
    return lab_sh("hosts", env=env).split()


def addr(node: int | str, env: Mapping[str, str] | None = None) -> str:
    """A node's address on the lab's bridge."""
    return lab_sh("addr", str(node), env=env).strip()


def active(env: Mapping[str, str] | None = None) -> bool:
    """Whether the lab named by LAB_ID is up (its node-0 answers)."""
    try:
        lab_sh("active", env=env, timeout=30)
    except StackError:
        return False
    return True


def engine_hosts(env: Mapping[str, str] | None = None) -> list[str]:
    """The DOCKER_HOST of every engine that may run a stack's containers: the
    lab's nodes when LAB_ID names a lab that is up, else the current engine."""
    merged = {**(env or {})}
    if merged.get("LAB_ID") and active(env):
        return hosts(env)
    return [engine.host_of(env)]


def form(nodes: int, env: Mapping[str, str] | None = None) -> None:
    """Join the lab's started engines into one swarm: node-0 inits it, nodes
    1..2 join as managers (N >= 3), the rest as workers; node-0 gets the
    database's label.

    Raises StackError when an engine does not answer, or the nodes are not
    all Ready within NODE_TIMEOUT seconds.
    """
    sockets = hosts(env)
    for node, host in enumerate(sockets):
        try:
            engine.wait_answering(host, timeout=NODE_TIMEOUT)
        except StackError as exc:
            raise StackError(f"node-{node}'s engine did not start: {exc}") from exc
    leader = engine.client(sockets[0])
    leader_addr = addr(0, env)
    leader.swarm.init(advertise_addr=leader_addr)
    tokens = leader.swarm.attrs["JoinTokens"]
    for node in range(1, nodes):
        # N=2: one manager (a second could not outvote a loss); N>=3: three.
        role = "Manager" if nodes >= 3 and node < MAX_MANAGERS else "Worker"
        engine.client(sockets[node]).swarm.join(
            remote_addrs=[f"{leader_addr}:2377"],
            join_token=tokens[role],
            advertise_addr=addr(node, env),
        )
    wait_until(
        lambda: sum(n.attrs["Status"]["State"] == "ready" for n in leader.nodes.list())
        == nodes,
        timeout=NODE_TIMEOUT,
        message=f"all {nodes} nodes Ready",
    )
    # The database's volume lives on a labelled node (deploy/docker-compose.yml).
    node0 = leader.nodes.get(leader.info()["Swarm"]["NodeID"])
    spec = node0.attrs["Spec"]
    spec["Labels"] = {**spec.get("Labels", {}), DB_NODE_LABEL: "true"}
    node0.update(spec)


def load_images(env: Mapping[str, str] | None = None) -> None:
    """One `docker save` from the host engine, one `load` per node at once.

    Raises StackError when an image is missing (deploy/build-images.sh builds
    them) or a node's load fails.
    """
    images = lab_images(env)
    tar = BUILD_DIR / f"lab-images-{(env or {}).get('LAB_ID', 'dc')}.tar"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    # The caller's engine (the host's), never a node's: nodes have no images.
    host_env = {"DOCKER_HOST": engine.host_of(env)}
    try:
        run(["docker", "save", *images, "-o", str(tar)], env=host_env, timeout=600)
        sockets = hosts(env)
        with ThreadPoolExecutor(len(sockets)) as pool:
            loads = [
                pool.submit(
                    run,
                    ["docker", "-H", host, "load", "-q", "-i", str(tar)],
                    timeout=600,
                )
                for host in sockets
            ]
            for done in loads:
                done.result()
    finally:
        tar.unlink(missing_ok=True)
    log(f"images loaded into {len(sockets)} engines: {' '.join(images)}")
