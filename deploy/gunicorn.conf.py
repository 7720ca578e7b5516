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

import os

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
# The containers' root filesystem is read-only; /tmp is a tmpfs.
worker_tmp_dir = "/tmp"
# Access logs stay off: a busy rng would log ten lines a second for nothing.
accesslog = None


def on_starting(server: object) -> None:
    # In the master, before any worker: a bad setting is one line and an exit,
    # not a traceback per worker and a boot loop.
    from dockercoins.startup import settings_or_exit

    settings_or_exit("gunicorn")
