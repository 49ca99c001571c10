"""The import rules of the codebase, read from the source with `ast` (nothing is imported).

- Backends import the seam, never each other.
- Pages (and app.py) are layout and widgets: no SDK, MLflow, FLAML, SQL, raw HTTP or model
  libraries, and no backend module.
- Everything in `lib/` outside the backends (the seam layer, the benchmark engine, charts ...)
  imports no backend; only the composition root `lib/backend.py` (and `lib/ui.py` through it)
  chooses one.
- No import cycle among `lib` modules at module level.
Each failure names the file, the line and the import that broke the rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Load tests run on this machine whatever the backend, so the Azure workspace composes the
# local job runner, its store and the local benchmark service. Nothing else in lib/azure may
# import lib/local.
AZURE_MAY_IMPORT_LOCAL = {
    "lib/azure/workspace.py": {"lib.local.jobs", "lib.local.store", "lib.local.benchmarks"},
}
# Composition roots: the only modules outside the backends that may name a backend.
COMPOSITION_ROOTS = {"lib/backend.py", "lib/ui.py"}
PAGE_FORBIDDEN = (
    "azure",
    "mlflow",
    "flaml",
    "sqlite3",
    "requests",
    "httpx",
    "lightgbm",
    "xgboost",
    "sklearn",
    "lib.local",
    "lib.azure",
)
BACKENDS = ("lib.local", "lib.azure")


@dataclass(frozen=True)
class Import:
    source: str  # path relative to the repository
    line: int
    module: str  # absolute dotted module name
    module_level: bool  # runs when the importing module is imported

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.module}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path, *folders: str) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        base = root / folder
        found.extend(sorted(base.rglob("*.py")) if base.is_dir() else [base])
    return [p for p in found if p.is_file() and "__pycache__" not in p.parts]


def known_modules(root: Path) -> set[str]:
    return {module_name(p, root) for p in python_files(root, "lib")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, root: Path, known: set[str]) -> list[Import]:
    """Every import in a file, with whether it runs at import time of that file."""
    source = str(path.relative_to(root))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(source, node.lineno, alias.name, module_level))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from lib import charts` imports the module lib.charts.
                target = f"{base}.{alias.name}"
                module = target if target in known else base
                found.append(Import(source, node.lineno, module, module_level))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for child in ast.iter_child_nodes(node):
                visit(child, False)
            return
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, module_level)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, module_level)

    visit(ast.parse(path.read_text(), filename=source), True)
    return list(dict.fromkeys(found))  # `from x import a, b` names module x once


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def all_imports(root: Path, *folders: str) -> list[Import]:
    known = known_modules(root)
    return [i for p in python_files(root, *folders) for i in imports_of(p, root, known)]


# --- the rules ---------------------------------------------------------------------------------


def azure_imports_local(root: Path) -> list[str]:
    return [
        str(i)
        for i in all_imports(root, "lib/azure")
        if under(i.module, "lib.local")
        and not any(
            under(i.module, allowed) for allowed in AZURE_MAY_IMPORT_LOCAL.get(i.source, ())
        )
    ]


def local_imports_azure(root: Path) -> list[str]:
    return [str(i) for i in all_imports(root, "lib/local") if under(i.module, "lib.azure")]


def pages_import_forbidden(root: Path) -> list[str]:
    return [
        str(i)
        for i in all_imports(root, "pages", "app.py")
        if any(under(i.module, name) for name in PAGE_FORBIDDEN)
    ]


def seam_imports_backend(root: Path) -> list[str]:
    files = [
        p
        for p in python_files(root, "lib")
        if not any(under(module_name(p, root), b) for b in BACKENDS)
        and str(p.relative_to(root)) not in COMPOSITION_ROOTS
    ]
    known = known_modules(root)
    return [
        str(i)
        for p in files
        for i in imports_of(p, root, known)
        if any(under(i.module, b) for b in BACKENDS)
    ]


def import_cycles(root: Path) -> list[str]:
    """Each cycle of module-level imports among lib modules, as the edges that close it."""
    known = known_modules(root)
    edges: dict[str, dict[str, Import]] = {m: {} for m in known}
    for i in all_imports(root, "lib"):
        source = module_name(root / i.source, root)
        if i.module_level and i.module in known and i.module != source:
            edges[source].setdefault(i.module, i)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in edges[node]:
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(known):
        if node not in index:
            strongconnect(node)
    return [
        "cycle: " + "; ".join(str(edges[a][b]) for a in members for b in edges[a] if b in members)
        for members in components
    ]


RULES = {
    "lib/azure imports lib/local (beyond the written exception)": azure_imports_local,
    "lib/local imports lib/azure": local_imports_azure,
    "a page imports an SDK, MLflow, FLAML, sqlite3, raw HTTP, a model library or a backend": (
        pages_import_forbidden
    ),
    "a module outside the backends (other than the composition root) imports a backend": (
        seam_imports_backend
    ),
    "lib modules import each other in a cycle": import_cycles,
}


@pytest.mark.parametrize("rule", list(RULES))
def test_import_rule(rule: str) -> None:
    broken = RULES[rule](REPO)
    assert not broken, f"{rule}:\n  " + "\n  ".join(broken)


# --- the checker itself catches what it should ---------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_reports_each_broken_rule_with_file_and_line(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "lib/__init__.py": "",
            "lib/workspace.py": "from lib.names import rule\n",
            "lib/names.py": "import re\n\n\ndef f():\n    from lib.local.jobs import x\n",
            "lib/backend.py": "from lib.azure.workspace import open_azure_workspace\n",
            "lib/local/__init__.py": "",
            "lib/local/jobs.py": "from lib.azure import client\n",
            "lib/azure/__init__.py": "",
            "lib/azure/client.py": "",
            "lib/azure/workspace.py": "from lib.local.jobs import JobManager\n",
            "lib/azure/models.py": "from lib.workspace import Model\nfrom lib.local import jobs\n",
            "pages/score.py": "import requests\nfrom sklearn.metrics import f1_score\n",
            "app.py": "import streamlit as st\n",
        },
    )
    assert azure_imports_local(root) == ["lib/azure/models.py:2 imports lib.local.jobs"]
    assert local_imports_azure(root) == ["lib/local/jobs.py:1 imports lib.azure.client"]
    assert pages_import_forbidden(root) == [
        "pages/score.py:1 imports requests",
        "pages/score.py:2 imports sklearn.metrics",
    ]
    # A lazy import inside a function still couples the seam to a backend.
    assert seam_imports_backend(root) == ["lib/names.py:5 imports lib.local.jobs"]
    assert import_cycles(root) == []


def test_checker_finds_module_level_cycles_only(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "lib/__init__.py": "",
            "lib/a.py": "from lib import b\n",
            "lib/b.py": "from lib.c import thing\n",
            "lib/c.py": "from .a import other\n",
            "lib/d.py": "import lib.e\n",
            "lib/e.py": "def f():\n    import lib.d\n",
            "lib/f.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lib.g import G\n"
            ),
            "lib/g.py": "from lib.f import F\n",
        },
    )
    assert import_cycles(root) == [
        "cycle: lib/a.py:1 imports lib.b; lib/b.py:1 imports lib.c; lib/c.py:1 imports lib.a"
    ]
