"""The image's HEALTHCHECK: exit 0 when this container's role is doing its job.

Standard library only, and no Django: it runs every few seconds in every
container and must stay cheap. The role comes from argv[1], else from the
marker deploy/entrypoint.sh writes. HTTP roles must answer GET / on port 80;
the worker and the controller touch a heartbeat file from their loops, which
must be fresher than HEARTBEAT_MAX_AGE seconds. A container started with
another command (`manage.py shell`) has no role and nothing to check.
"""

import os
import sys
import time
import urllib.request
from pathlib import Path

ROLE_MARKER = Path("/tmp/dockercoins-role")
HEARTBEATS = {
    "worker": Path("/tmp/worker-alive"),
    "controller": Path("/tmp/controller-alive"),
}
HTTP_ROLES = {"rng", "hasher", "webui"}
HTTP_URL = "http://127.0.0.1:80/"
# rng answers one request at a time, so the probe can queue behind every
# worker's request (0.1 s each): leave it most of the Docker-side timeout.
HTTP_TIMEOUT = float(os.environ.get("HEALTHCHECK_TIMEOUT", "8"))
HEARTBEAT_MAX_AGE = float(os.environ.get("HEARTBEAT_MAX_AGE", "30"))


def role() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        return ROLE_MARKER.read_text().strip()
    except OSError:
        return ""


def check_http() -> str:
    # No proxies: an HTTP_PROXY in the container's environment must not
    # route a loopback probe elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(HTTP_URL, timeout=HTTP_TIMEOUT) as resp:
        if resp.status != 200:
            return f"GET / answered {resp.status}"
    return ""


def check_heartbeat(path: Path) -> str:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat yet ({path})"
    if age > HEARTBEAT_MAX_AGE:
        return f"heartbeat {path} is {age:.0f}s old (limit {HEARTBEAT_MAX_AGE:.0f}s)"
    return ""


def main() -> int:
    name = role()
    try:
        if name in HTTP_ROLES:
            problem = check_http()
        elif name in HEARTBEATS:
            problem = check_heartbeat(HEARTBEATS[name])
        else:
            problem = ""
    except Exception as exc:  # refused, timed out, reset: all mean unhealthy
        problem = f"{exc.__class__.__name__}: {exc}"
    if problem:
        print(f"unhealthy {name}: {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
