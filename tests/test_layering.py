"""Layers are checked, not hoped for: the import-linter contracts in pyproject.toml hold."""

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def lint_imports(root):
    """Run `lint-imports` on the `kerasreg` package under `root` with `root`'s pyproject.toml."""
    script = pathlib.Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(script), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    shutil.copytree(ROOT / "kerasreg", tmp_path / "kerasreg", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    zoo = tmp_path / "kerasreg" / "models" / "zoo.py"
    zoo.write_text(zoo.read_text() + "\nfrom kerasreg.runs import RunConfig  # noqa: E402\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "kerasreg.models.zoo -> kerasreg.runs" in result.stdout
