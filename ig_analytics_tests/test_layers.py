"""The package's layering (docs/architecture.md, "Which module may import which"), read from the source: each
part imports only the parts below it, and only the Dagster layer (and the processes and command line above it)
imports Dagster. A new import that runs back up a floor fails here with the file and the line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ig_analytics"

# Cross-cutting modules at the package top: configuration, logging, secrets, the process's malloc arenas. They
# import only each other.
BASE = {"settings", "install_marker", "constants", "redaction", "terminal_text", "logging_setup", "stopping", "clock",
        "malloc_arenas"}

ALLOWED: dict[str, set[str]] = {
    **{name: BASE for name in BASE},
    "graph_api": BASE,
    "sandbox": BASE,
    "local": BASE,
    "storage": BASE | {"local"},
    "quality": BASE | {"storage"},
    "analytics": BASE | {"storage"},
    "accounts": BASE | {"storage", "graph_api"},
    "alerts": BASE | {"storage", "analytics"},
    "ingestion": BASE | {"storage", "graph_api", "accounts", "analytics"},
    "defs": BASE | {"storage", "graph_api", "accounts", "analytics", "quality", "ingestion", "alerts"},
    "definitions": BASE | {"defs"},
    "cli": None,  # the top: may import anything
    "__init__": BASE,
}
DAGSTER_USERS = {"defs", "definitions", "cli"}
# Named exceptions, each with its reason.
EXCEPTIONS = {
    # a bad IG_GRAPH_API_VERSION is a usage error when the settings load: the catalogue is data, no I/O
    ("settings", "ig_analytics.graph_api.catalogue"),
}


def _part(module: str) -> str:
    """ig_analytics.<part>[.module...] -> part."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ig_analytics":
                yield node.lineno, [f"ig_analytics.{a.name}" for a in node.names]
            else:
                yield node.lineno, [node.module]
        elif isinstance(node, ast.Import):
            yield node.lineno, [a.name for a in node.names]


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part("ig_analytics." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        allowed = ALLOWED.get(source, set())
        for line, modules in _imports(path):
            for module in modules:
                where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
                if module == "dagster" or module.startswith("dagster."):
                    if source not in DAGSTER_USERS:
                        found.append(f"{where} (only {sorted(DAGSTER_USERS)} may import Dagster)")
                elif module.startswith("ig_analytics."):
                    target = _part(module)
                    if (allowed is not None and target != source and target not in allowed
                            and (source, module) not in EXCEPTIONS):
                        found.append(f"{where} ({source} may import {sorted(allowed)})")
    return found


def test_every_part_is_declared():
    parts = {_part("ig_analytics." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts))
             for p in PACKAGE.rglob("*.py")}
    assert parts <= set(ALLOWED), f"declare the layer of {sorted(parts - set(ALLOWED))} in ALLOWED"


def test_no_import_runs_back_up_a_floor():
    assert _violations() == []


def test_the_rule_can_fail(tmp_path, monkeypatch):
    """A storage module that imports the Dagster layer is reported."""
    fake = tmp_path / "ig_analytics"
    (fake / "storage").mkdir(parents=True)
    (fake / "storage" / "bad.py").write_text("from ig_analytics.defs import jobs\nimport dagster\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert len(_violations()) == 2


def test_no_module_is_over_450_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def test_no_function_is_over_80_lines():
    """A function a reader cannot hold in view is split into named parts (the sandbox's generated data too)."""
    import ast

    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"] = lines
    assert long == {}
