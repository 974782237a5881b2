"""The layers hold and nothing imports in a cycle: read from the source (ast), every import
counts, including the ones inside functions (a deferred import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "live", "matcher", "models", "workers", "api", "marketplace")
# What each package may import of ours (README.md's layout table).
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "models": set(),
    "matcher": {"models"},
    "live": {"config", "models", "matcher"},
    "workers": {"config", "models", "matcher", "live"},
    "api": {"config", "models", "matcher", "live", "workers"},
    "marketplace": set(PACKAGES),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (never run)."""
    return {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body for sub in ast.walk(stmt)
    }


def _imports(path: Path, *, runtime: bool = False) -> set[str]:
    """Modules of ours that `path` imports (as dotted names, as written); `runtime`: only the
    imports that run (not those under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_only(tree) if runtime else set()
    found: set[str] = set()
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else (
        _module_name(path))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # `from pkg import mod` imports the submodule pkg.mod when there is one.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _graph(*, runtime: bool = False) -> dict[str, set[str]]:
    modules = {
        _module_name(p): p
        for package in PACKAGES for p in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, runtime=runtime) if m in modules and m != name}
    return graph


def test_the_graph_sees_the_modules() -> None:
    graph = _graph()
    # A broken reader would make the checks below pass vacuously.
    assert "api.app" in graph and "config.settings" in graph["api.app"]
    assert "live" in graph["workers.context"] and "live.index" in graph["live"]
    # Type-only imports count for the layers, not as cycles (they never run).
    assert "api.metrics" in graph["api.keys"]
    assert "api.metrics" not in _graph(runtime=True)["api.keys"]
    assert len(graph) > 60


@pytest.mark.parametrize("package", PACKAGES)
def test_layers(package: str) -> None:
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items() if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] != package and target.split(".")[0] not in ALLOWED[package]
    )
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    # Imports that run: `if TYPE_CHECKING:` blocks are for annotations only. A package's
    # __init__ re-exporting its submodules is part of the package, not a cycle.
    graph = _graph(runtime=True)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if node.startswith(target + ".") or target.startswith(node + "."):
                continue  # a package and its own submodules
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_pages_do_not_call_the_api_handlers() -> None:
    """The web pages and the JSON API share actions through api/services, never by importing
    each other's handler modules (a handler module is one that declares ROUTES)."""
    handlers = {
        _module_name(p) for p in (ROOT / "api").glob("*.py")
        if "\nROUTES = " in p.read_text(encoding="utf-8")
    }
    assert {"api.briefs", "api.alerts", "api.rules"} <= handlers
    # Pages that still call a handler module's functions (outcomes and the public
    # performance page, added while the shared actions moved): each should move its action to
    # api/services as the others did. Listed so that no new crossing is added unnoticed.
    not_yet = {"api.web.buyer imports api.invitations", "api.web.seller imports api.responses",
               "api.web.performance imports api.performance"}
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items() if module.startswith("api.web")
        for target in targets if target in handlers
    )
    assert set(bad) - not_yet == set(), "\n".join(sorted(set(bad) - not_yet))


def test_every_setting_is_in_the_readme() -> None:
    """README.md's settings tables name every variable config/settings.py reads."""
    from dataclasses import fields

    from config.settings import PREFIX, WORKER_PREFIX, Environment, WorkerConfig

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [f"{PREFIX}{name.upper()}" for name in Environment.model_fields]
    names += [f"{WORKER_PREFIX}{f.name.upper()}" for f in fields(WorkerConfig)]
    assert len(names) > 30
    missing = [n for n in names if f"| `{n}` |" not in readme]
    assert not missing, missing
