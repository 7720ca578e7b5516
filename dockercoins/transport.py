"""A request body the client cannot deliver: a 4xx, never a 500 or a traceback.

gunicorn hands the app a stream over the client socket. Reading it raises
OSError when the chunked framing is broken (InvalidChunkSize for a size such
as "zz"), when the client hangs up mid-body (NoMoreData), or when the body
stalls past BODY_TIMEOUT (TimeoutError; deploy/gunicorn.conf.py). Django
wraps all three in UnreadablePostError. Each is answered here in one line.
"""

import contextlib
import socket

from django.http import HttpResponse


def unreadable_body(meta: dict, error: OSError) -> HttpResponse:
    """400 (408 for a stalled body), text/plain, one line; the connection is
    closed after it, since what is left of the body cannot be trusted."""
    cause: BaseException = error
    while isinstance(cause.__cause__ or cause.__context__, OSError):
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    # gevent's socket may raise its own "timed out" class, not TimeoutError.
    timed_out = isinstance(cause, TimeoutError) or str(cause) == "timed out"
    reason = (
        "the request body stalled" if timed_out else "the request body is unreadable"
    )
    detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    body = f"{reason}: {detail}\n"
    response = HttpResponse(
        body, status=408 if timed_out else 400, content_type="text/plain"
    )
    response["Content-Length"] = str(len(response.content))
    stop_reading(meta)
    return response


def stop_reading(meta: dict) -> None:
    """No next request on this connection: gunicorn would first drain the
    rest of this body, meet the same error, and log it with a traceback.
    (It ignores a Connection: close header from the app.) The answer is
    still written; the next read sees the end of the stream and closes."""
    sock = meta.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
