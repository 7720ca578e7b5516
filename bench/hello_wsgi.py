"""The smallest WSGI app: gunicorn's own per-request ceiling on this machine.

bench/pipeline.py serves it with the webui's gunicorn options, so the /json
figure can be read against what gunicorn alone manages here.
"""


def application(environ: dict, start_response) -> list[bytes]:
    body = b'{"coins": 0, "hashes": 0, "now": 0.0}'
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
