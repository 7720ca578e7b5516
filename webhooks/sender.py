"""The one module that talks HTTP to receivers (patched in tests).

Each attempt has one hard deadline for the whole exchange (connect, send,
status line, headers, the first bytes of the answer). A client's usual timeout
is per read: a receiver that answers a byte a second never trips it and holds
the sender forever. Here a timer shuts the socket down when the deadline
passes, which wakes whatever read or write is blocked on it.

http.client, not `requests`: it never follows a redirect (a 3xx is an answer,
a failed attempt) and it hands us the socket the timer must be able to cut.
"""

import contextlib
import http.client
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

ANSWER_BYTES = 500  # what the delivery log keeps of an answer


class SendError(Exception):
    """No answer: the connection failed or broke (str() is one line)."""


class Timeout(SendError):
    """No whole answer before the attempt's deadline."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    text: str


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to `url` and read the answer's status and first bytes, all
    within `timeout` seconds in total. Raises Timeout past the deadline and
    SendError when no answer came (refused, reset, not HTTP)."""
    parts = urlsplit(url)
    kind = (
        http.client.HTTPSConnection
        if parts.scheme == "https"
        else http.client.HTTPConnection
    )
    connection = kind(parts.hostname or "", parts.port, timeout=timeout)
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        # OSError: already closed, the attempt ended meanwhile.
        if connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.connect()
        if expired.is_set():  # the timer fired while connecting
            raise Timeout(_late(timeout))
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(ANSWER_BYTES)
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set() or isinstance(error, socket.timeout):
            raise Timeout(_late(timeout)) from None
        raise SendError(f"{type(error).__name__}: {error}") from None
    finally:
        timer.cancel()
        connection.close()
    if expired.is_set():
        raise Timeout(_late(timeout))
    return Answer(response.status, text.decode("utf-8", "replace"))


def _late(timeout: float) -> str:
    return f"timed out: no whole answer within {timeout:g} s"
