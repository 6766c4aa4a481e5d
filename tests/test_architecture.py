"""The architecture as a test: every import follows the layers of the README
("Design": one direction only) and no package imports another that imports it
back, at any depth. The contracts are import-linter's, in pyproject.toml
([tool.importlinter]); `lint-imports` checks them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(project: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the `inventory` package of `project`, with its contracts."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command, "lint-imports is missing: run scripts/bootstrap (import-linter)"
    env = {**os.environ, "PYTHONPATH": str(project)}  # this copy, not the installed one
    return subprocess.run([command, "--no-cache", str(project / "pyproject.toml")],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)


def test_imports_follow_the_layers_and_form_no_cycle():
    result = _lint(ROOT)
    assert result.returncode == 0, (
        "an import breaks the architecture (README, Design); import-linter says:\n"
        + result.stdout[-6000:] + result.stderr[-2000:])
    assert "BROKEN" not in result.stdout


def test_the_contracts_catch_an_upward_import_and_a_cycle(tmp_path):
    """The contracts are not vacuous: in a copy of the package, the database
    layer importing a use case (upward, and a cycle between db and service)
    and two service modules importing each other both break them."""
    shutil.copytree(ROOT / "inventory", tmp_path / "inventory",
                    ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    tables = tmp_path / "inventory" / "db" / "tables.py"
    tables.write_text(tables.read_text() + "\nfrom ..service import catalog  # noqa: E402\n")
    context = tmp_path / "inventory" / "service" / "context.py"
    context.write_text(context.read_text() + "\nfrom . import catalog  # noqa: E402\n")

    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout[-4000:]
    assert "inventory.db is not allowed to import inventory.service" in result.stdout, \
        result.stdout[-4000:]
    assert "No cycles are allowed in inventory.service" in result.stdout, result.stdout[-4000:]
