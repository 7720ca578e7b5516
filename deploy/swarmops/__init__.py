"""What reasons about the swarm, for `make up`/`down`/`rollout`/`test`, the
tests and the benches: Python on the Docker SDK. The shell scripts beside this
package only run sequences of system commands (packages, debootstrap,
namespaces and bridges, starting dockerd) and hand over to `python -m
deploy.swarmops` for the rest.

    layout      where things are and what they are called (one copy each)
    procs       run a command or raise with its output; the CLI's one-line errors
    images      the images a stack and a lab need (stdlib only)
    engine      a Docker client for an engine; the swarm this engine is in
    stack       deploy, converge, remove and prune stacks
    lab         the multi-node lab's swarm: form it, load images, its engines
    controller  the running controller's container, for `make rollout`
    up          `make up` and `make down` once the machine is bootstrapped
"""
