"""No import cycle between sarcomri's modules (function-level imports included), except the ones listed here
with the reason they are still there: a cycle is two modules that cannot be understood, tested or moved apart."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Known cycles still to break, each a frozenset of modules. Remove an entry when it is broken.
KNOWN: set[frozenset[str]] = set()


def _graph() -> dict[str, set[str]]:
    """Module -> the sarcomri modules it imports anywhere in its source."""
    modules = {}
    for path in (SRC / "sarcomri").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_config_and_the_task_configs_do_not_import_each_other():
    graph = _graph()
    for task_config in ("sarcomri.seg2d.config", "sarcomri.seg3d.config"):
        for study_side in ("sarcomri.config", "sarcomri.study_config", "sarcomri.config_kinds"):
            assert study_side not in graph[task_config]


def test_no_new_import_cycle():
    new = [sorted(c) for c in _cycles(_graph()) if c not in KNOWN]
    assert not new, f"import cycles: {new}"


def test_io_cohort_and_stats_never_import_torch():
    """The lower stages stay importable without the deep-learning stack (a fresh interpreter imports each)."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys\n"
        "import sarcomri.cohort, sarcomri.io, sarcomri.stats\n"
        "for pkg in (sarcomri.cohort, sarcomri.io, sarcomri.stats):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'monai', 'timm'))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
