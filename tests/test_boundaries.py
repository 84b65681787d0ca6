"""The architecture holds: the domain imports no UI or server framework (import-linter contracts)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    r = subprocess.run([lint, str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "KEPT" in r.stdout and "BROKEN" not in r.stdout


# Circles that another branch removes (the lead deletes the entry when it lands); registry/app.py and fast.py no
# longer form one (they share registry/handlers.py). Anything else is a new circle and fails.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_circle():
    """Every import counts, also those inside functions: a lazy import is still an arrow between modules."""
    import grimp  # installed with import-linter

    graph = grimp.build_graph("regtui")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    circles = [sorted(c) for c in _cycles(edges) if c not in KNOWN_CYCLES]
    assert not circles, f"import circles: {circles}"


MAX_LINES = 450
# Over the limit, left to the branches that rewrite them (the lead deletes the entry when one is split).
KNOWN_LARGE: set[str] = set()


def test_no_module_is_too_large():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "regtui").rglob("*.py")}
    large = {p: n for p, n in sizes.items() if n > MAX_LINES and p not in KNOWN_LARGE}
    assert not large, f"modules over {MAX_LINES} lines (split them by what they hold): {large}"
