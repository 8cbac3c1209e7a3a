"""The layout's rules, read from the source: no import circles, a domain that knows nothing of
Slack or HTTP, SQL only in the domain, the outbox and db/, and no module over 500 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "db")
MAX_LINES = 500


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def imports_of(name: str) -> Iterator[str]:
    """Every module `name` imports, anywhere in it (inside functions too), fully qualified."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from bot import incidents` imports a module; `from bot.x import name` does not.
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in MODULES else base


def internal_graph() -> dict[str, set[str]]:
    return {name: {i for i in imports_of(name) if i in MODULES} - {name} for name in MODULES}


def test_there_is_no_import_circle() -> None:
    graph = internal_graph()
    # A package's __init__ that re-exports its own modules is not a circle with them.
    for name in graph:
        graph[name] = {i for i in graph[name] if not name.startswith(i + ".")}
    visiting: list[str] = []
    done: set[str] = set()
    circles: list[list[str]] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            circles.append([*visiting[visiting.index(name) :], name])
            return
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert circles == []


def reachable(start: str) -> set[str]:
    """Every module `start` needs, ours and others', following our own modules' imports."""
    graph = {name: set(imports_of(name)) for name in MODULES}
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(graph.get(name, ()))
    return seen


HTTP_AND_SLACK = ("slack_bolt", "slack_sdk", "waitress", "flask", "apiflask", "werkzeug")


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(("bot.incidents", "bot.reports")))
)
def test_the_domain_reaches_nothing_of_slack_or_http(module: str) -> None:
    ours = ("bot.slack", "bot.web", "bot.server", "bot.delivery")
    reached = {
        name
        for name in reachable(module)
        if name.split(".")[0] in HTTP_AND_SLACK or name.startswith(ours)
    }
    assert reached == set()


SQL = {"select", "insert", "update", "delete", "text", "exists", "func", "case", "undefer"}


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(("bot.slack", "bot.web")))
)
def test_the_surfaces_run_no_sql(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text())
    used = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy")
        for alias in node.names
    }
    assert used & SQL == set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_500_lines(module: str) -> None:
    assert len(MODULES[module].read_text().splitlines()) <= MAX_LINES


def test_the_checks_above_see_real_imports() -> None:
    """The graph is not empty by mistake: known edges are in it."""
    graph = internal_graph()
    assert "bot.incidents.vocabulary" in graph["bot.incidents.changes"]
    assert "bot.slack.listeners" in graph["bot.slack.app"]
    assert "slack_sdk" in {i.split(".")[0] for i in imports_of("bot.slack.app")}
    assert "bot.incidents" in graph["bot.slack.listeners.views"]
