"""A CLI that starts like a tool: light imports, no TensorFlow start-up noise, lazy public names."""

import importlib
import json
import os
import subprocess
import sys

import pytest
from helpers import run_python

import kerasreg
from kerasreg import _quiet

HEAVY = ("tensorflow", "tensorflow_datasets", "matplotlib", "keras", "jax", "keras_tuner", "mlflow")
CHECK_IMPORTS = """
import sys
from kerasreg import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exc:  # --help and --version exit from argparse
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY", heavy)
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [["list"], ["--help"], ["--version"], ["train", "--help"], ["tune", "--help"]])
def test_light_commands_import_no_heavy_library(argv):
    result = run_python(CHECK_IMPORTS.format(heavy=HEAVY), *argv)
    assert "HEAVY []" in result.stdout
    assert result.stderr == ""


def test_import_kerasreg_is_light_and_names_load_on_use():
    out = run_python(
        "import sys, kerasreg\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
        "kerasreg.list_placements()\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
        "kerasreg.build_model\n"
        "print('keras' in sys.modules)\n"
    ).stdout.split("\n")
    assert out[:3] == ["[]", "[]", "True"]


def test_version_flag_prints_the_package_version(capsys):
    from kerasreg import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"kerasreg {kerasreg.__version__}"


@pytest.mark.parametrize("package", ["kerasreg", "kerasreg.models", "kerasreg.data", "kerasreg.training",
                                     "kerasreg.export", "kerasreg.runs", "kerasreg.analysis", "kerasreg.study",
                                     "kerasreg.tuning", "kerasreg.tracking"])
def test_every_lazy_name_resolves_and_is_listed(package):
    module = importlib.import_module(package)
    names = [n for n in module.__all__ if n != "__version__"]
    assert names
    for name in names:
        value = getattr(module, name)
        if callable(value):
            assert value.__module__.startswith(package)
            assert value.__name__ == name
        else:
            assert value is not None
        assert name in dir(module)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'not_a_name'"):
        getattr(module, "not_a_name")


def test_names_moved_in_0_2_keep_their_old_paths():
    from kerasreg.models import kinds

    assert kinds.Uout is kerasreg.Uout is kerasreg.models.uout.Uout


def test_a_command_that_imports_tensorflow_prints_nothing_on_stderr():
    result = run_python("import sys\nfrom kerasreg import cli\nsys.exit(cli.main(sys.argv[1:]))",
                        "build", "mlp", "--input-shape", "4", "--num-classes", "2", "--placement", "none")
    assert "Dense(100) > ReLU  x2 > Dense(2)" in result.stdout
    assert result.stderr == ""


WORKER_IMPORTS_TENSORFLOW = """
import contextlib, sys
from kerasreg import _processes, _quiet
with _quiet.filtered_stderr() if sys.argv[1] == "filtered" else contextlib.nullcontext():
    _processes.call_on("tensorflow", exec, "import tensorflow")
    _processes.shutdown()
"""


def test_worker_processes_started_under_the_commands_filter_are_quiet_too():
    # The command's workers (a TensorFlow exporter, study workers) inherit its filtered stderr.
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert "absl::InitializeLog" in run_python(WORKER_IMPORTS_TENSORFLOW, "plain", env=env).stderr
    assert run_python(WORKER_IMPORTS_TENSORFLOW, "filtered", env=env).stderr == ""


IMPORT_CHANGES = """
import json, os, sys
def jax_flags():
    import jax
    return {name: str(getattr(jax.config, name)) for name in (
        "jax_threefry_partitionable", "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes", "jax_compilation_cache_max_size", "jax_enable_x64")}
def tf_flags():
    import tensorflow as tf
    return [tf.get_logger().level, tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(), tf.config.get_soft_device_placement()]
first = sys.argv[1]  # what the user imported before kerasreg
if first == "jax,tensorflow":
    flags = [jax_flags(), tf_flags()]
environ = dict(os.environ)
import kerasreg
changed = sorted(k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k))
after = [jax_flags(), tf_flags()]
print(json.dumps({"changed": changed, "same_flags": first == "nothing" or flags == after, "flags": after}))
os.write(2, b"I0000 00:00:1.0   1 user.cc:1] the user log line\\n")  # a TensorFlow C++ log line of the program's
"""
FIRST_IMPORTS = ("nothing", "jax,tensorflow")


def _import_changes(code, first):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code, first], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout.splitlines()[-1]), "stderr": result.stderr}


@pytest.fixture(scope="module")
def flags_without_kerasreg():
    """JAX's and TensorFlow's flags in a process that never imports kerasreg (the same whatever it imports first)."""
    return _import_changes(IMPORT_CHANGES.replace("import kerasreg\n", ""), "jax,tensorflow")["flags"]


@pytest.fixture(scope="module")
def after_import_kerasreg():
    """What a program that imports kerasreg after `first` (and then TensorFlow) sees, by `first`."""
    return {first: _import_changes(IMPORT_CHANGES, first) for first in FIRST_IMPORTS}


@pytest.mark.parametrize("first", FIRST_IMPORTS)
def test_import_kerasreg_changes_no_environment_variable_but_the_backend_and_no_jax_or_tensorflow_flag(
        first, flags_without_kerasreg, after_import_kerasreg):
    answer = after_import_kerasreg[first]
    assert answer["changed"] == ["KERAS_BACKEND"]
    assert answer["same_flags"]
    assert answer["flags"] == flags_without_kerasreg  # as without kerasreg


@pytest.mark.parametrize("first", FIRST_IMPORTS)
def test_a_users_program_sees_tensorflow_messages_after_import_kerasreg(first, after_import_kerasreg):
    assert "the user log line" in after_import_kerasreg[first]["stderr"]


def test_filtered_stderr_drops_cxx_log_lines_and_keeps_the_rest(capfd):
    with _quiet.filtered_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1795672171.626999   12892 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1795673156.993020   30659 cuda_platform.cc:52] failed call to cuInit\n")
        os.write(2, b"a real problem\n")
        os.write(2, b"UserWarning: something the user should see\n")
    err = capfd.readouterr().err
    assert err == "a real problem\nUserWarning: something the user should see\n"


def test_keras_load_model_finds_the_custom_classes_once_kerasreg_is_imported_after_keras(tmp_path):
    model = kerasreg.build_model("mlp", placement="uout", input_shape=(4,), num_classes=2, seed=0)
    model.save(tmp_path / "m.keras")
    out = run_python(
        "import sys, keras, kerasreg\n"
        "model = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
        "print(type(model).__name__, sorted({type(l).__name__ for l in model.layers}))\n",
        tmp_path / "m.keras",
    ).stdout
    assert out.startswith("ZooFunctional")
    assert "Uout" in out
