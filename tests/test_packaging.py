"""Packaging basics: one version, py.typed, a license that matches pyproject, a changelog, typed public API."""

import inspect
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

import kerasreg

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_reads_the_version_from_the_package():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, name = attr.rsplit(".", 1)
    assert getattr(__import__(module, fromlist=[name]), name) == kerasreg.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", kerasreg.__version__)


def test_changelog_has_a_section_for_this_version_and_the_last():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{kerasreg.__version__}]" in text
    assert "## [0.1.0]" in text


def test_license_file_matches_the_declared_license():
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_py_typed_marker_ships_with_the_package():
    assert (ROOT / "kerasreg" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["kerasreg"]


def _public_callables():
    for name in kerasreg.__all__:
        value = getattr(kerasreg, name)
        if inspect.isfunction(value):
            yield name, value
        elif inspect.isclass(value) and "__init__" in vars(value):
            yield name, value.__init__


@pytest.mark.parametrize("name, function", list(_public_callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_api_is_type_annotated(name, function):
    parameters = [p for p in inspect.signature(function).parameters if p != "self"]
    missing = [p for p in parameters if p not in function.__annotations__]
    assert not missing, f"{name}: parameters without a type hint: {missing}"
    assert "return" in function.__annotations__, f"{name}: no return type hint"


def test_an_installed_wheel_with_bytecode_only_imports_and_serves_its_public_names(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("kerasreg-*.whl")
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-b", str(target / "kerasreg")], check=True)
    for source in (target / "kerasreg").rglob("*.py"):
        source.unlink()
    code = ("import kerasreg\n"
            "assert kerasreg.__file__.startswith(sys.argv[1]) and kerasreg.__file__.endswith('.pyc')\n"
            "print(kerasreg.list_placements()[:2])\n"
            "print(kerasreg.build_model('mlp', input_shape=(4,), num_classes=2).count_params())\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", "import sys\n" + code, str(target)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    params = kerasreg.build_model("mlp", input_shape=(4,), num_classes=2).count_params()
    assert result.stdout.splitlines() == [str(kerasreg.list_placements()[:2]), str(params)]


def _requirement_name(requirement):
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")


def _declared():
    project = PYPROJECT["project"]
    return {_requirement_name(r) for r in project["dependencies"]}, {
        _requirement_name(r) for extra in project["optional-dependencies"].values() for r in extra}


def _imported_distributions():
    """Distribution names of every third-party module the package imports (at any depth, lazily or not)."""
    import ast
    import importlib.metadata

    modules = set()
    for path in (ROOT / "kerasreg").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"kerasreg", "__future__"}
    owners = importlib.metadata.packages_distributions()
    return {module: {d.lower().replace("_", "-") for d in owners.get(module, [module])} for module in third_party}


def test_every_imported_distribution_is_declared():
    core, extras = _declared()
    undeclared = {m: d for m, d in _imported_distributions().items() if not d & (core | extras)}
    assert undeclared == {}


# Declared but not imported by kerasreg, each for a stated reason in pyproject.toml.
NOT_IMPORTED = {"protobuf", "importlib-resources"}


def test_every_declared_dependency_is_imported():
    core, _ = _declared()
    imported = set().union(*_imported_distributions().values())
    assert sorted(core - imported - NOT_IMPORTED) == []


def test_ci_pins_the_declared_lower_bounds():
    result = subprocess.run([sys.executable, str(ROOT / ".ci" / "lowest.py"), "keras", "tensorflow", "jax", "numpy",
                             "ml_dtypes"], capture_output=True, text=True, check=True)
    bounds = {_requirement_name(r): re.search(r">=\s*([\d.]+)", r).group(1)
              for r in PYPROJECT["project"]["dependencies"] if ">=" in r}
    pins = dict(re.fullmatch(r"([\w-]+)(?:\[\w+\])?==([\d.]+)", pin).groups() for pin in result.stdout.split())
    assert sorted(pins) == ["jax", "keras", "ml-dtypes", "numpy", "tensorflow"]
    for name, version in pins.items():
        assert version.split(".")[:len(bounds[name].split("."))] == bounds[name].split("."), name
