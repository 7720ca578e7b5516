"""gunicorn settings of the HTTP roles (rng, hasher, webui), per DOCKERCOINS_ROLE.

One file read by deploy/entrypoint.sh, bench/pipeline.py and the tests, so all
three serve exactly alike. Options given on the command line or in
GUNICORN_CMD_ARGS override these (gunicorn reads this file first).

Why gevent workers: with sync or gthread workers a client that sends half a
request holds a thread until it finishes, so one stalled connection stopped
rng (1 thread) and about 40 stopped the webui; gunicorn's deployment guide asks
for a buffering proxy in front of those workers for exactly this reason
(https://docs.gunicorn.org/en/stable/deploy.html). A gevent worker parks each
connection in a greenlet instead, so a slow client costs only its own
connection (up to `worker_connections` per worker). And gunicorn's async
workers read every request's headers under a `keepalive`-second timeout
(gunicorn/workers/base_async.py), so a half-sent request line is dropped after
`keepalive` seconds instead of waiting forever.

rng's one-request-at-a-time ceiling is not a property of the server any more:
mining.rng.views holds a process-wide lock around each draw (with one worker
per replica, one draw at a time per replica), however many connections wait.
"""

import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Any

_ROLE = os.environ.get("DOCKERCOINS_ROLE", "webui")
# rng: one process, so its device lock is the replica's. hasher and webui: one
# process per core of the 2-core nodes the workshop runs on.
_WORKERS = {"rng": 1, "hasher": 2, "webui": 2}

worker_class = "gevent"
workers = _WORKERS.get(_ROLE, 2)
# Open connections per worker, idle or busy; beyond this a worker stops
# accepting until one closes.
worker_connections = 1000
# Seconds an idle keep-alive connection, or a request's headers, may take.
keepalive = 15
graceful_timeout = 10


def _memory_dir() -> str:
    """Where the files a worker touches all the time live: /dev/shm, a tmpfs
    wherever Linux runs (Docker mounts one in every container, the stack's
    read-only ones too), else /tmp (a tmpfs in our stack, not on a host).

    gunicorn's heartbeat is an fchmod of a file in worker_tmp_dir every
    second, and prometheus_client writes its mmap'd sample files on every
    request. On a disk-backed directory an fchmod waiting for a journal commit,
    or a write to a page the kernel is writing back, stops the whole worker,
    every connection it holds, for as long as the disk takes (gunicorn's FAQ,
    "blocking os.fchmod"); bench/tails.py measures it (docs/performance.md).
    """
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else "/tmp"


worker_tmp_dir = _memory_dir()
# Seconds a request body may stall between two reads (gunicorn bounds the
# headers only, with `keepalive`): without it a client that announced 100
# bytes and sent 3 held its connection for ever. BODY_TIMEOUT, whole seconds.
_raw_body_timeout = os.environ.get("BODY_TIMEOUT", "15").strip()
if not re.fullmatch(r"[0-9]{1,4}", _raw_body_timeout, re.ASCII) or not (
    1 <= int(_raw_body_timeout) <= 3600
):
    raise SystemExit(
        f"gunicorn: bad setting: BODY_TIMEOUT={_raw_body_timeout!r}: "
        "a whole number of seconds from 1 to 3600"
    )
BODY_TIMEOUT = int(_raw_body_timeout)
# Bytes of an unread body drained to keep a connection alive; past that, it
# is closed instead.
_MAX_DRAIN = 8 * 1024 * 1024
# Access logs stay off: a busy rng would log ten lines a second for nothing.
accesslog = None

# prometheus_client's multiprocess mode (dockercoins.metrics): every worker
# process writes its samples to files in one directory per server, and the
# process answering GET /metrics adds them up. Set in the arbiter when it
# starts (not when this file is read: bench/pipeline.py reads it for its
# figures), before any worker imports prometheus_client, which picks its mode
# at import. One new directory per server: several servers share /tmp on a
# host (bench, tests), and a fresh one needs no wiping of a previous run's.
_made_dirs: list[str] = []


def on_starting(server: object) -> None:
    # Before any worker: a bad setting is one line and an exit, not a traceback
    # per worker and a boot loop. Checked in a child process: importing the
    # settings here, in the master, would import Django's thread-locals before
    # the gevent worker patches threading, and greenlets would then share one
    # database connection ("DatabaseWrapper objects created in a thread can
    # only be used in that same thread": every request a 500).
    check = "from dockercoins.startup import settings_or_exit as c; c('gunicorn')"
    done = subprocess.run([sys.executable, "-c", check], check=False)
    if done.returncode:
        raise SystemExit(done.returncode)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        made = tempfile.mkdtemp(
            prefix=f"dockercoins-metrics-{_ROLE}-", dir=_memory_dir()
        )
        _made_dirs.append(made)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made


def child_exit(server: object, worker: object) -> None:
    # A dead worker's counters stay in the sums (its files remain); only its
    # live gauges must go.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    for made in _made_dirs:  # ours, not one given from outside
        shutil.rmtree(made, ignore_errors=True)


def pre_request(worker: object, req: object) -> None:
    # The body is read from the client socket while the app runs: bound each
    # read. A read that times out raises OSError in the app, which answers
    # 408 (mining.hasher, dockercoins.middleware) and closes the connection.
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None and _has_body(req):  # not on GET /json's hot path
        sock.settimeout(BODY_TIMEOUT)


def post_request(worker: object, req: Any, environ: object, resp: Any) -> None:
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None and _has_body(req):
        if resp is not None and not resp.should_close():
            _drain_or_hang_up(req, sock)
        # Back to blocking between requests: gunicorn bounds that wait itself
        # (keepalive), and a socket timeout there would log a traceback.
        sock.settimeout(None)
    take_turns()


def take_turns() -> None:
    """Let the worker's other connections have their turn before this one's
    next request.

    gunicorn's gevent worker serves a keep-alive connection in one greenlet
    that reads the next request as soon as it has answered. When the client
    has already sent it (a fast client, on the other core), the read does not
    block, so the greenlet never yields: it serves its own connection again
    and again while the worker's other connections wait, their requests
    unread. bench/tails.py measured the event loop of a worker with the CPU
    to itself stalled 80-100 ms at p99, the same with a do-nothing app, and
    the requests' p99 with it (docs/performance.md, "The tails").
    gevent.sleep(TURN) with TURN 0 yields to the hub, which runs the
    greenlets already ready and polls the sockets within its switch interval
    (5 ms), so the connections take turns; it costs a greenlet switch per
    request. (A TURN above 0, a timer, would resume the greenlet only after
    the hub polled the sockets: stricter turns, not measured yet; bench/
    tails.py's `timer` variant measures it.)
    """
    if worker_class == "gevent":
        from gevent import sleep  # type: ignore[import-untyped]

        sleep(TURN)


# Seconds a connection gives up the worker after each request (take_turns):
# 0, a yield; what bench/pipeline.py measured (docs/performance.md).
TURN = 0.0


def _has_body(req: Any) -> bool:
    return any(
        name == "TRANSFER-ENCODING"
        or (name == "CONTENT-LENGTH" and value.strip() not in ("", "0"))
        for name, value in getattr(req, "headers", ())
    )


def _drain_or_hang_up(req: Any, sock: socket.socket) -> None:
    """Read what the app left of the body, still under BODY_TIMEOUT.

    gunicorn drains it itself before the next request on the connection, but
    outside any handler of ours: a broken chunk, a stall or a hang-up there
    (after a 405 that never read the body, say) was an ERROR with a
    traceback. Here a body that cannot be drained ends the connection
    quietly: gunicorn then finds nothing left and reads an end of stream.
    """
    try:
        left = _MAX_DRAIN
        while left > 0 and (data := req.body.read(min(left, 65536))):
            left -= len(data)
        if left > 0:
            return
    except Exception:  # noqa: BLE001, S110 (the client's framing, not our bug)
        pass
    req.body = io.BytesIO()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
