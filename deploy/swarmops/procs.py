"""Running commands: one way to run one and raise with its output, and the
command line's way to say what went wrong in one line."""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


class StackError(AssertionError):
    """A command failed, or a stack or lab was not ready in time.

    An AssertionError so that a test using a stack fails (not errors) on it.
    """


def run(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
    stdin: str | None = None,
    capture: bool = True,
) -> str:
    """Run `args` with `env` over this process's environment; return stdout
    ("" when not `capture`d: then the command writes to ours, as it goes).

    Raises StackError with the command's output when it exits non-zero or
    outlives `timeout` seconds.
    """
    shown = " ".join(str(a) for a in args)
    try:
        done = subprocess.run(
            [str(a) for a in args],
            env={**os.environ, **(env or {})},
            cwd=cwd,
            input=stdin,
            capture_output=capture,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{shown}: no end in {timeout:g}s") from exc
    except OSError as exc:
        raise StackError(f"{shown}: {exc}") from exc
    if done.returncode != 0:
        output = f"{done.stdout}{done.stderr}" if capture else "(output above)"
        raise StackError(f"{shown} failed:\n{output}".rstrip())
    return done.stdout or ""


def log(message: str) -> None:
    """A progress line on stderr, as the shell scripts print theirs."""
    print(f"==> {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)
