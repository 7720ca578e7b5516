"""Every command README.md and docs/ show is one the project accepts, every
file they name exists, and every link between the pages resolves, so the docs
stay true as the code moves.

What counts as a command: each line of a fenced shell block, and each inline
code span that starts with `make`, `manage.py` (or `python manage.py`),
`rollout` (the command line page's short form of `manage.py rollout`),
`docker`, a script under deploy/ or bench/, or a program in EXTERNAL. How each
is checked, without a swarm and within a second or two:
- `manage.py NAME ARGS`: NAME is a management command, and ARGS parse with that
  command's own parser (values included: the strict parsers run), as
  `rollout ARGS` and `make rollout ARGS='...'` do;
- `make TARGET`: the target is in the Makefile, and VAR=value names a variable
  the Makefile or the scripts read;
- `docker ...`: the subcommand and its flags are in KNOWN_DOCKER, and a command
  run in an image or a container (`docker run IMAGE manage.py check`) is
  checked as above;
- `deploy/x.sh ARGS`, `bench/x.py ARGS`: the script exists and accepts ARGS
  (the flags its argparse declares, or the words its `case` takes);
- a flag shown on its own (`--update-delay -5s`) is one some command declares.
A span such as `manage.py rollout apply: error: ...` quotes an output, not a
command. A synopsis (`rollout undo worker [--to-revision N]`) is checked with
its brackets opened and its placeholders (PLACEHOLDERS) filled in.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Programs that are not ours: their flags are their own business. Each one
# with the reason it is shown.
EXTERNAL = {
    "httping": "the workshop's latency probe (step 3); not installed here",
    "curl": "an HTTP client, shown calling our API",
    "wrk": "the HTTP load generator bench/pipeline.py drives",
}
# Environment variables read by programs that are not ours.
EXTERNAL_ENV = {"DOCKER_HOST": "the Docker CLI's own: which engine to talk to"}

# What a synopsis's placeholders stand for, so the rest of it can be parsed.
PLACEHOLDERS = {
    "N": "2",
    "SECONDS": "1",
    "PATH": "/tmp/alive",
    "SERVICE": "worker",
    "SERVICE…": "worker",
    "USERNAME": "admin",
    "NAME": "admin",
    "PASSWORD": "secret",
}

# The Docker CLI's subcommands and the flags the docs use with them. A doc
# that shows another one adds it here, after checking `docker ... --help`.
KNOWN_DOCKER: dict[str, dict[str, set[str]]] = {
    "stack": {
        "deploy": {"-c", "--compose-file"},
        "rm": set(),
        "ps": set(),
        "ls": set(),
    },
    "service": {
        "scale": set(),
        "ps": set(),
        "ls": set(),
        "update": {"--image", "--force", "--detach", "-d"},
        "inspect": set(),
        "logs": set(),
        "rollback": set(),
    },
    "swarm": {"init": {"--advertise-addr"}, "join": set(), "leave": set()},
    "run": {"": {"--rm"}},
    "exec": {"": {"-i", "-t", "-u"}},
    "ps": {"": {"-q", "-f"}},
    "import": {"": set()},
    "kill": {"": {"--signal", "-s"}},
}

# Repository paths a doc may name that are made by a build, not committed.
GENERATED = {
    ".venv": "made by deploy/bootstrap.sh",
    ".venv/bin/pytest": "made by deploy/bootstrap.sh",
    ".venv/bin/python": "made by deploy/bootstrap.sh",
    "deploy/.build/secret_key": "made once by deploy/build-images.sh",
    "deploy/.build/db_password": "made once by deploy/build-images.sh",
    "deploy/.build/wheels": "the wheelhouse deploy/build-images.sh builds",
    "mining/static/mining/vendor/": "Chart.js, copied by deploy/vendor-static.sh",
    "bench/results/": "written by the benches",
}

# Commands shown on purpose that these checks cannot take: none today. Each
# entry is the command as shown, with the reason.
ALLOWED: dict[str, str] = {}


@dataclass(frozen=True)
class Shown:
    """A command, flag or path as one page shows it."""

    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


# ---------------------------------------------------------------- reading


def _code_spans(path: Path) -> Iterator[tuple[str, int, str]]:
    """("fence" | "inline", line, text) for every shell line and code span."""
    text = path.read_text()
    fences = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
    for match in fences.finditer(text):
        shell = match.group(1) in ("bash", "sh", "shell", "console")
        if match.group(1) and not shell:
            continue  # another language: not commands
        first = text.count("\n", 0, match.start(2)) + 1
        body = match.group(2).replace("\\\n", " ")
        for offset, line in enumerate(body.splitlines()):
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line:  # an untagged block (a tree, an output) may hold a command
                yield "fence" if shell else "inline", first + offset, line
    prose = fences.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", prose):
        line = text.count("\n", 0, match.start()) + 1
        yield "inline", line, " ".join(match.group(1).split())


def _is_command(words: list[str]) -> bool:
    if not words:
        return False
    first = words[0]
    return (
        first in ("make", "manage.py", "rollout", "docker", *EXTERNAL)
        or (first in ("python", "python3", ".venv/bin/python") and len(words) > 1)
        or re.match(r"(deploy|bench)/[\w.-]+\.(sh|py)$", first) is not None
    )


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _strip_env(words: list[str]) -> tuple[list[str], list[str]]:
    """(the VAR=value words before the command, the command's words)."""
    env: list[str] = []
    while words and re.match(r"[A-Z][A-Z0-9_]*=", words[0]):
        env.append(words[0].split("=", 1)[0])
        words = words[1:]
    return env, words


def _shown() -> Iterator[tuple[str, Shown]]:
    """("command" | "flag" | "path", what) for everything the pages show."""
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        for kind, line, text in _code_spans(page):
            shown = Shown(name, line, text)
            if re.match(r"[^:`]*\S: error:", text):
                continue  # a quoted usage error, e.g. `manage.py mine: error: ...`
            env, words = _strip_env(_words(text))
            if kind == "fence" or _is_command(words):
                yield "command", shown  # a shell block holds commands only
            elif words and words[0].startswith("--"):
                yield "flag", shown
            elif words and words[0] in _rollout_subcommands() and len(words) > 1:
                yield "command", Shown(name, line, f"rollout {text}")
            for word in words:
                if _looks_like_repo_path(word):
                    yield "path", Shown(name, line, word)


def _all(kind: str) -> list[Shown]:
    return [shown for k, shown in _shown() if k == kind]


# ----------------------------------------------------------- the project


@cache
def _command(name: str) -> BaseCommand:
    commands = get_commands()
    if name not in commands:
        raise AssertionError(f"no management command {name!r}")
    app = commands[name]
    if isinstance(app, BaseCommand):
        return app
    return load_command_class(app, name)


def _parser(name: str) -> argparse.ArgumentParser:
    return _command(name).create_parser("manage.py", name)


@cache
def _rollout_subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser("rollout")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("`manage.py rollout` has no subcommands")


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _flags(sub)
    return flags


@cache
def _makefile() -> str:
    return (ROOT / "Makefile").read_text()


@cache
def _make_targets() -> set[str]:
    targets: set[str] = set()
    for match in re.finditer(
        r"^([A-Za-z0-9_.-][A-Za-z0-9_. -]*):(?!=)", _makefile(), re.M
    ):
        targets.update(match.group(1).split())
    return targets - {".PHONY"}


@cache
def _tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if not out:  # not a git checkout (e.g. an unpacked copy): walk the tree
        out = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts
        ]
    return [path for path in out if (ROOT / path).exists()]


@cache
def _read_by_project(name: str) -> bool:
    """True when some script, setting or the Makefile reads variable `name`."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for path in _tracked():
        if path.endswith(".md") or path.startswith(("tests/", "docs/")):
            continue
        source = path == "Makefile" or path.endswith((".sh", ".py", ".yml", ".yaml"))
        if source and pattern.search((ROOT / path).read_text(errors="replace")):
            return True
    return False


def _script_words(path: Path) -> set[str]:
    """The flags and subcommands script `path` accepts, read from its source."""
    source = path.read_text()
    words: set[str] = set()
    if path.suffix == ".py":
        words |= set(re.findall(r"add_argument\(\s*\"(-[-\w]+)\"", source))
        words |= set(re.findall(r"add_parser\(\s*\"([-\w]+)\"", source))
        if "argparse" in source:
            words |= {"-h", "--help"}
    else:
        for pattern in re.findall(r"^\s*\(?([^\s()#]+)\)", source, re.M):
            words |= {word.strip("\"'") for word in pattern.split("|")}
        words |= set(re.findall(r"\" = ([-\w]+) \]", source))
    return words


@cache
def _all_flags() -> set[str]:
    """Every flag some command of ours declares."""
    flags = _flags(_parser("rollout")) | _flags(_parser("mine"))
    flags |= _flags(_parser("migrate_locked")) | _flags(_parser("check"))
    for script in [
        *ROOT.glob("bench/*.py"),
        *ROOT.glob("deploy/*.sh"),
        *ROOT.glob("deploy/*.py"),
    ]:
        flags |= {word for word in _script_words(script) if word.startswith("-")}
    return flags


# ------------------------------------------------------------- checking


def _expand(words: list[str]) -> list[str]:
    """A synopsis as a command: brackets opened, `a|b` as `a`, placeholders
    filled in, `…` as a value."""
    out = []
    for word in words:
        word = word.strip("[]")
        if not word:
            continue
        if word in PLACEHOLDERS:
            word = PLACEHOLDERS[word]
        elif re.fullmatch(r"[A-Z][A-Z_]*…?", word):
            raise AssertionError(f"placeholder {word!r}: add it to PLACEHOLDERS")
        elif "|" in word and not word.startswith("-"):
            word = word.split("|")[0]
        out.append(word.replace("…", "x") if word != "…" else "x")
    return out


def _parse(parser: argparse.ArgumentParser, args: list[str]) -> None:
    """Parse `args` as the command line would; a usage error fails the test."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(args)
    except CommandError as error:
        raise AssertionError(f"{parser.prog} {shlex.join(args)}: {error}") from None
    except SystemExit as leave:
        if leave.code not in (0, None):
            raise AssertionError(
                f"{parser.prog} {shlex.join(args)}: {err.getvalue().strip()}"
            ) from None


def check_manage(words: list[str]) -> None:
    """`manage.py NAME ARGS`: NAME exists and ARGS parse."""
    if not words:
        return  # `manage.py` itself, named in prose
    name, args = words[0], _expand(words[1:])
    command = _command(name)
    if not args and name == "rollout":
        return  # `manage.py rollout`: the command named, not run
    _parse(command.create_parser("manage.py", name), args)


def check_make(words: list[str]) -> None:
    env: list[str] = []
    rest: list[str] = []
    for word in words:
        (env if re.match(r"[A-Z][A-Z0-9_]*=", word) else rest).append(word)
    for target in rest:
        assert target in _make_targets(), f"no make target {target!r}"
    for assignment in env:
        var, value = assignment.split("=", 1)
        assert var in _makefile() or _read_by_project(var), f"nothing reads {var}"
        if var == "ARGS" and "rollout" in rest:
            check_manage(["rollout", *_words(value)])


def check_docker(words: list[str]) -> None:
    assert words, "`docker` with no subcommand"
    group = KNOWN_DOCKER.get(words[0])
    assert group is not None, f"unknown docker subcommand {words[0]!r}"
    if "" in group:  # a command with no subcommand of its own (run, exec, ...)
        flags, rest = group[""], words[1:]
    else:
        if len(words) == 1:
            return  # `docker service`: the group named
        assert words[1] in group, f"unknown docker {words[0]} subcommand {words[1]!r}"
        flags, rest = group[words[1]], words[2:]
    positional: list[str] = []
    skip = False
    for word in rest:
        if skip:
            skip = False
            continue
        if word.startswith("-") and not positional:
            assert word in flags, f"docker {words[0]}: unknown flag {word!r}"
            skip = word not in ("--rm", "-i", "-t", "-q")
        else:
            positional.append(word)
    if words[0] in ("run", "exec") and len(positional) > 1:
        inner = positional[1:]  # after the image or the container
        if inner[0] == "python":
            inner = inner[1:]
        if inner and inner[0] == "manage.py":
            check_manage(inner[1:])
    for word in rest:
        for sub in re.findall(r"\$\((.*?)\)", word):
            check_command(sub.split("|")[0].strip())


def check_script(words: list[str]) -> None:
    path = ROOT / words[0]
    assert path.is_file(), f"no script {words[0]}"
    args = _expand(words[1:])
    if path.suffix == ".sh" and args:  # alone it may be named, not run (lib.sh)
        assert path.stat().st_mode & 0o111, f"{words[0]} is not executable"
    accepted = _script_words(path)
    positional = [word for word in args if not word.startswith("-")]
    for word in args:
        if word.startswith("-"):
            assert word in accepted, f"{words[0]} takes no {word}"
    subcommands = {w for w in accepted if not w.startswith("-") and w != "*"}
    if path.suffix == ".sh" and positional and subcommands:
        assert positional[0] in subcommands, (
            f"{words[0]} has no subcommand {positional[0]!r}"
        )


def check_command(text: str) -> None:
    if text in ALLOWED:
        return
    env, words = _strip_env(_words(text))
    for var in env:
        assert var in EXTERNAL_ENV or _read_by_project(var), f"nothing reads {var}"
    if words and words[0] in ("python", "python3", ".venv/bin/python"):
        words = words[1:]
        if words[:3] == ["-m", "deploy.swarmops", "rollout"] and len(words) > 3:
            # What `make rollout` runs: `manage.py rollout ARGS` in the stack
            # named after `rollout`, its ARGS the command's own.
            check_manage(["rollout", *words[4:]])
            return
        if words[:1] == ["-m"] and len(words) > 1:  # python -m deploy.swarmops
            words = [_module_path(words[1]), *words[2:]]
    assert words, f"no command in {text!r}"
    first = words[0]
    if first == "manage.py":
        check_manage(words[1:])
    elif first == "rollout":
        check_manage(words)
    elif first == "make":
        check_make(words[1:])
    elif first == "docker":
        check_docker(words[1:])
    elif first in EXTERNAL:
        pass
    elif re.match(r"(deploy|bench)/", first) or first.endswith(".py"):
        check_script(words)
    else:
        raise AssertionError(f"{first!r} is none of ours nor in EXTERNAL or ALLOWED")


def _module_path(module: str) -> str:
    """The repository file `python -m module` runs."""
    base = module.replace(".", "/")
    for path in (f"{base}.py", f"{base}/__main__.py"):
        if (ROOT / path).is_file():
            return path
    raise AssertionError(f"no module {module} in the repository")


def _looks_like_repo_path(word: str) -> bool:
    if word.startswith(("/", "http", "~")) or "://" in word or "=" in word:
        return False
    top = {path.split("/")[0] for path in _tracked()} | {".venv"}
    head = word.split("/")[0]
    if "/" in word:
        return head in top and re.fullmatch(r"[\w./*-]+", word) is not None
    return (
        re.fullmatch(r"[\w-]+\.(py|sh|yml|yaml|toml|txt|md|conf|json)", word)
        is not None
    )


def check_path(word: str) -> None:
    if word in GENERATED or any(
        word.startswith(g.rstrip("/") + "/") for g in GENERATED
    ):
        return
    files = _tracked()
    if "/" not in word:  # a bare module or file name: somewhere in the tree
        assert any(path.split("/")[-1] == word for path in files), f"no file {word}"
        return
    path = ROOT / word.rstrip("/")
    if "*" in word:
        assert list(ROOT.glob(word)), f"nothing matches {word}"
    else:
        assert path.exists() and any(
            f == word.rstrip("/") or f.startswith(word.rstrip("/") + "/") for f in files
        ), f"no {word} in the repository"


# ----------------------------------------------------------------- tests


def _fail_unless(check: Callable[[str], None], shown: Shown) -> None:
    """Run `check` on what the page shows; fail naming the page and line."""
    problem = None
    try:
        check(shown.text)
    except AssertionError as error:
        problem = str(error)
    if problem is not None:
        pytest.fail(f"{shown}\n  {problem}", pytrace=False)


def _ids(items: list[Shown]) -> list[str]:
    return [f"{s.page}:{s.line}" for s in items]


COMMANDS = _all("command")
FLAGS = _all("flag")
PATHS = _all("path")


def test_it_finds_the_commands_the_docs_show() -> None:
    """The extraction itself: a regression guard, so a change to it that finds
    nothing cannot pass the checks below vacuously."""
    texts = {shown.text for shown in COMMANDS}
    assert "make up" in texts
    assert "rollout scale worker 10 --wait" in texts
    assert "docker stack deploy -c deploy/docker-compose.yml dockercoins" in texts
    assert len(COMMANDS) > 60 and len(PATHS) > 40 and FLAGS


@pytest.mark.parametrize("shown", COMMANDS, ids=_ids(COMMANDS))
def test_it_accepts_every_command_the_docs_show(shown: Shown) -> None:
    _fail_unless(check_command, shown)


@pytest.mark.parametrize("shown", FLAGS, ids=_ids(FLAGS))
def test_it_declares_every_flag_the_docs_show(shown: Shown) -> None:
    flags = [word for word in _words(shown.text) if word.startswith("--")]
    unknown = [
        flag
        for flag in flags
        if flag not in _all_flags()
        # `--update-` (a family of flags, named by its prefix)
        and not (flag.endswith("-") and any(f.startswith(flag) for f in _all_flags()))
    ]
    if unknown:
        pytest.fail(f"{shown}\n  no command declares {unknown}", pytrace=False)


@pytest.mark.parametrize("shown", PATHS, ids=_ids(PATHS))
def test_it_has_every_file_the_docs_name(shown: Shown) -> None:
    _fail_unless(check_path, shown)


@pytest.mark.parametrize("subcommand", sorted(_rollout_subcommands()))
def test_it_answers_help_for_every_rollout_subcommand(subcommand: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as leave:
        _rollout_subcommands()[subcommand].parse_args(["--help"])
    assert leave.value.code == 0
    assert "usage:" in out.getvalue()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


LINKS = [
    Shown(
        str(page.relative_to(ROOT)),
        page.read_text().count("\n", 0, m.start()) + 1,
        m.group(1),
    )
    for page in PAGES
    for m in re.finditer(r"\]\(([^)\s]+)\)", page.read_text())
    if not m.group(1).startswith(("http://", "https://", "mailto:"))
]


def test_it_links_the_readme_to_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        page.name
        for page in PAGES[1:]
        if f"](docs/{page.name})" not in readme and f"](docs/{page.name}#" not in readme
    ]
    assert not missing, f"README.md links to none of {missing}"


@pytest.mark.parametrize("link", LINKS, ids=_ids(LINKS))
def test_it_resolves_every_link_between_the_pages(link: Shown) -> None:
    target, _, anchor = link.text.partition("#")
    page = (ROOT / link.page).parent / target if target else ROOT / link.page
    if not page.exists():
        pytest.fail(f"{link}\n  no {target}", pytrace=False)
    if anchor and page.suffix == ".md" and anchor not in _anchors(page):
        pytest.fail(
            f"{link}\n  no heading #{anchor} in {target or link.page}", pytrace=False
        )


@pytest.mark.parametrize(
    "check, text",
    [
        (check_command, "make frobnicate"),
        (check_command, "WORKER_REPLICAZ=2 make up"),
        (check_command, "make rollout ARGS='frob worker'"),
        (check_command, "manage.py no_such_command"),
        (check_command, "rollout frob worker"),
        (check_command, "rollout apply worker --no-such-flag 1"),
        (check_command, "rollout apply worker --update-delay 5parsecs"),
        (check_command, "rollout scale worker"),
        (check_command, "docker service frob dockercoins_worker"),
        (check_command, "docker stack deploy --bogus deploy/docker-compose.yml x"),
        (check_command, "docker run --rm dockercoins:1.0 manage.py no_such_command"),
        (check_command, "deploy/lab.sh no-such-subcommand"),
        (check_command, "deploy/down.sh --no-such-flag"),
        (check_command, "bench/lab.py --no-such-flag 3"),
        (check_command, "deploy/no-such-script.sh"),
        (check_command, "frobctl --now"),
        (check_command, "python -m deploy.no_such_module --help"),
        (check_command, "python -m bench.lab --no-such-flag"),
        (check_path, "deploy/no-such-file.yml"),
        (check_path, "no_such_module.py"),
    ],
)
def test_it_refuses_what_does_not_exist(
    check: Callable[[str], None], text: str
) -> None:
    """The checks above fail on a doc that names a non-existent make target,
    subcommand, flag, value, script or file."""
    with pytest.raises(AssertionError):
        check(text)


def test_it_refuses_a_link_to_a_missing_heading() -> None:
    assert _slug("Deploying: what `make up` does") == "deploying-what-make-up-does"
    assert "the-workshop-from-the-admin" in _anchors(ROOT / "docs" / "admin.md")
    assert "no-such-heading" not in _anchors(ROOT / "docs" / "admin.md")


# `Makefile:49`, `rollouts/spec/fields.py:234`: a line number of one of our
# files goes stale with the next edit above it (the trial found `Makefile:49`
# quoted for what is now another line), so the pages never quote one.
_LINE_NUMBER = re.compile(
    r"\b(?:Makefile|[\w./-]+\.(?:py|sh|yml|yaml|toml|txt|cfg|html|js|css|md)):\d+"
)


def test_the_docs_quote_no_line_numbers_that_drift() -> None:
    found = [
        f"{page.relative_to(ROOT)}:{number}: {match.group(0)}"
        for page in PAGES
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for match in _LINE_NUMBER.finditer(line)
    ]
    assert found == []
