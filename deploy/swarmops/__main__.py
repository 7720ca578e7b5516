"""`python -m deploy.swarmops COMMAND`: what the Makefile and the deploy
scripts run once .venv exists (deploy/bootstrap.sh makes it).

    engine-ready [SECS]       wait until the engine answers
    ensure-swarm              a single-node swarm unless the engine is in one
    deploy NAME               deploy/update a stack from our compose files
    wait NAME [SECS]          wait until every service converged
    pending NAME              print the services not converged yet
    rm NAME [--volumes]       remove it, wait until nothing is left
    prune-tests               remove test/bench stacks whose run was killed
    has-ipvs                  exit 0 when the kernel has IPVS
    lab-form N | lab-load     join a started lab's engines; load its images
    up [--nodes N] NAME       `make up` after bootstrap and the images
    down [--volumes] NAME     `make down`
    rollout NAME ARGS...      `manage.py rollout ARGS` in the running controller

Image tags, ports and replicas come from the environment (see
deploy/docker-compose.yml). Errors: one ERROR line (and the failing
command's output), exit status 1.
"""

import argparse
import os
import sys

import docker

from deploy.swarmops import controller, engine, lab, stack, up
from deploy.swarmops.procs import StackError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.swarmops",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ready = commands.add_parser("engine-ready")
    ready.add_argument("seconds", nargs="?", type=float, default=90)
    commands.add_parser("ensure-swarm")
    for name in ("deploy", "pending"):
        commands.add_parser(name).add_argument("name")
    wait = commands.add_parser("wait")
    wait.add_argument("name")
    wait.add_argument("seconds", nargs="?", type=float, default=stack.CONVERGE_TIMEOUT)
    rm = commands.add_parser("rm")
    rm.add_argument("name")
    rm.add_argument("--volumes", action="store_true")
    commands.add_parser("prune-tests")
    commands.add_parser("has-ipvs")
    commands.add_parser("lab-form").add_argument("nodes", type=int)
    commands.add_parser("lab-load")
    make_up = commands.add_parser("up")
    make_up.add_argument("name")
    make_up.add_argument("--nodes", type=int, default=1, choices=range(1, 6))
    make_up.add_argument("--admin", default=os.environ.get("ADMIN_USER") or "admin")
    make_up.add_argument(
        "--timeout", type=float, default=float(os.environ.get("UP_TIMEOUT") or 300)
    )
    make_down = commands.add_parser("down")
    make_down.add_argument("name")
    make_down.add_argument("--volumes", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = dict(os.environ)
    if argv[:1] == ["rollout"] and len(argv) >= 2:
        # Everything after the stack's name is the command's own, --help too.
        # When a lab is up (make up NODES=N), its controller, on any node.
        env["LAB_ID"] = env.get("LAB_ID") or "dc"
        controller.exec_rollout(argv[1], argv[2:], env)
    args = _parser().parse_args(argv)
    match args.command:
        case "engine-ready":
            engine.wait_answering(timeout=args.seconds)
        case "ensure-swarm":
            engine.ensure_swarm()
        case "deploy":
            stack.deploy(args.name, env)
        case "wait":
            stack.wait(args.name, env, timeout=args.seconds)
        case "pending":
            late = stack.pending(args.name, env)
            print("\n".join(late))
            return 1 if late else 0
        case "rm":
            stack.remove(args.name, env, volumes=args.volumes)
        case "prune-tests":
            stack.prune_tests(env)
        case "has-ipvs":
            return 0 if engine.has_ipvs() else 1
        case "lab-form":
            lab.form(args.nodes, env)
        case "lab-load":
            lab.load_images(env)
        case "up":
            up.up(args.name, args.nodes, args.admin, args.timeout)
        case "down":
            up.down(args.name, volumes=args.volumes)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (StackError, AssertionError, docker.errors.DockerException) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(1)
