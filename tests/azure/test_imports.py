"""The Azure backend imports the seam layer, never the local backend (one written exception)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

AZURE = REPO_ROOT / "lib" / "azure"
# Load tests run on this machine whatever the backend: the Azure workspace composes the local
# job runner and benchmark service for them.
ALLOWED = {
    "lib/azure/workspace.py": {"lib.local.benchmarks", "lib.local.jobs", "lib.local.store"},
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "lib":
                # `from lib import local` imports the package itself.
                found.update(f"lib.{alias.name}" for alias in node.names)
    return found


def local_imports(path: Path) -> set[str]:
    return {m for m in imported_modules(path) if m == "lib.local" or m.startswith("lib.local.")}


def test_the_azure_backend_imports_no_local_module_beyond_the_exception() -> None:
    files = sorted(AZURE.rglob("*.py"))
    assert len(files) > 5
    found = {
        str(path.relative_to(REPO_ROOT)): imports
        for path in files
        if (imports := local_imports(path))
    }
    unexpected = {f: m - ALLOWED.get(f, set()) for f, m in found.items()}
    assert {f: m for f, m in unexpected.items() if m} == {}


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import lib.local.jobs\n"
        "from lib.local.models import MODEL_NAME\n"
        "from lib import local\n"
        "def later():\n"
        "    from lib.local.tabular_model import Encoder\n"
        "from lib.names import validate_model_name\n"
    )
    assert local_imports(sample) == {
        "lib.local.jobs",
        "lib.local.models",
        "lib.local",
        "lib.local.tabular_model",
    }
