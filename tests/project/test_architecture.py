"""The shape of `rollouts/` (docs/architecture.md): which part may import which.

Read from the source with `ast` (bench/imports.py), so a new import that breaks
the layering fails here, with the part and the module that did it. Imports
under `if TYPE_CHECKING:` name a type only and never run: they are left out.
"""

import ast
from pathlib import Path

from bench.imports import ROOT, cycles, module_graph, part_graph, part_of

# Lowest first. The webui (admin, api, their forms and serializers) runs with the
# database only: it never imports the engine adapter or the controller.
ALLOWED: dict[str, set[str]] = {
    "spec": set(),
    "models": {"spec"},
    "records": {"spec", "models"},
    "engine": {"spec", "models", "records"},
    "metrics": {"spec", "models"},
    "analysis": {"spec"},
    "control": {"spec", "models", "records", "engine", "metrics", "analysis"},
    "admin": {"spec", "models", "records"},
    "api": {"spec", "models", "records"},
    "management": {"spec", "models", "records", "engine", "control"},
    "apps": set(),
    "urls": {"api"},
}
WEBUI = ("spec", "models", "records", "admin", "api")
CONTROLLER_ONLY = ("engine", "control", "metrics", "analysis")

MODULES = module_graph("rollouts")
PARTS = part_graph(MODULES)


def _offending(part: str, target_part: str) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in MODULES.items()
        if part_of(module, MODULES) == part
        for target in targets
        if part_of(target, MODULES) == target_part
    )


def test_it_declares_every_part_of_rollouts_in_the_table() -> None:
    # A new capability gets its own folder and its row here, never a flat module.
    assert set(PARTS) == set(ALLOWED), "add the part to ALLOWED and the docs"


def test_it_imports_only_the_parts_below_each_part() -> None:
    wrong = [
        line
        for part, targets in PARTS.items()
        for target in sorted(targets - ALLOWED.get(part, set()))
        for line in _offending(part, target)
    ]
    assert wrong == []


def test_it_keeps_the_engine_and_the_controller_out_of_the_webui() -> None:
    wrong = [
        line
        for part in WEBUI
        for other in CONTROLLER_ONLY
        for line in _offending(part, other)
    ]
    assert wrong == []


def test_it_has_no_import_loop_between_parts_or_modules() -> None:
    assert cycles(PARTS) == []
    assert cycles(MODULES) == []


def test_it_reads_the_imports_the_code_really_has() -> None:
    # The reader itself: a known link and a known absence, so an empty graph
    # (a broken reader) cannot pass the checks above.
    assert "rollouts.spec.fields" in MODULES["rollouts.spec.specs"]
    assert "control" in PARTS["management"]
    assert "rollouts.models" not in MODULES["rollouts.spec.fields"]


# Exactly one module of the product talks to each outside service (Prometheus
# is asked over urllib; the probe and the webhook sender speak HTTP to our own
# roles and to receivers). Deploy
# tooling (deploy/), benches and tests are outside the product and left out;
# `docker.types` only builds the spec's dataclasses and never calls the engine.
APP_PACKAGES = ("access", "dockercoins", "mining", "operations", "rollouts", "webhooks")
TALKERS = {
    "docker": "rollouts/engine/client.py",
    "redis": "mining/store.py",
    "urllib.request": "dockercoins/prometheus.py",
}


def _runtime_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _talks_to(imports: set[str], client: str) -> bool:
    if client == "docker":
        calls = {name for name in imports if not name.startswith("docker.types")}
        return any(name == "docker" or name.startswith("docker.") for name in calls)
    return any(name == client or name.startswith(client + ".") for name in imports)


def test_exactly_one_module_talks_to_each_outside_service() -> None:
    files = [
        path
        for package in APP_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]
    talkers = {
        client: sorted(
            str(path.relative_to(ROOT))
            for path in files
            if _talks_to(_runtime_imports(path), client)
        )
        for client in TALKERS
    }
    assert talkers == {client: [module] for client, module in TALKERS.items()}


def test_only_the_prometheus_client_reads_where_prometheus_is() -> None:
    readers = sorted(
        str(path.relative_to(ROOT))
        for package in APP_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "PROMETHEUS_URL" in path.read_text() and path.name != "settings.py"
    )
    assert readers == ["dockercoins/prometheus.py"]
