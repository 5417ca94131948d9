"""Training backends: the choice, the process boundaries, and the same guarantees on JAX and TensorFlow.

Tests marked `parity` (here and in test_training, test_callbacks,
test_mc_dropout, test_export and test_reliability) run in this session on its backend (JAX
by default), and `test_parity_checks_pass_on_tensorflow` runs all of them
again in one pytest subprocess with `KERAS_BACKEND=tensorflow`.
"""

import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import _backend, cli, runs, training

BACKEND = keras.backend.backend()
OTHER = {"jax": "tensorflow", "tensorflow": "jax"}[BACKEND]
PARITY_FILES = ["test_backends.py", "test_training.py", "test_callbacks.py", "test_mc_dropout.py",
                "test_export.py", "test_reliability.py"]


@pytest.fixture(scope="module")
def mnist1d():
    return kerasreg.load_dataset("mnist1d")


@pytest.mark.parity
def test_variance_shift_recomputed_from_saved_model_matches_logged(mnist1d, tmp_path):
    training.seed_everything(0)
    model = kerasreg.build_model("mlp", placement="drop_before_bn", widths=(32, 32), dropout_rate=0.5,
                                 input_shape=mnist1d.input_shape, num_classes=10, seed=0)
    result = kerasreg.train(model, mnist1d, epochs=2, run_dir=tmp_path, verbose=0)
    saved = keras.saving.load_model(tmp_path / "model.keras")
    x_val = mnist1d.as_numpy("val")[0][: training.trainer.VARIANCE_SHIFT_BATCH]
    # The shift by hand: each BN layer's input variance at inference over its moving variance.
    ratios = []
    for layer in training.variance_shift.batch_norm_layers(saved):
        probe = keras.Model(saved.inputs[0], layer.input)
        inputs = np.asarray(probe(x_val, training=False), np.float64)
        moving = np.asarray(layer.moving_variance.value, np.float64)
        ratios.append(np.mean((inputs.var(axis=0) + layer.epsilon) / (moving + layer.epsilon)))
    assert len(ratios) == 2
    np.testing.assert_allclose(result.history["variance_shift_mean"][-1], np.mean(ratios), atol=1e-4)
    np.testing.assert_allclose(result.variance_shift_max, max(max(r, 1 / r) for r in ratios), atol=1e-4)


@pytest.mark.parity
def test_a_run_on_the_other_backend_trains_in_a_subprocess(tmp_path, capsys):
    code = cli.main(["train", "--backend", OTHER, "--widths", "16", "--epochs", "2", "--out", str(tmp_path),
                     "--name", "elsewhere", "--quiet"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "elsewhere" / "manifest.json").read_text())
    assert manifest["backend"] == manifest["training"]["backend"] == OTHER
    assert manifest["config"]["backend"] == OTHER
    # A run config with a backend is checked before anything trains.
    with pytest.raises(ValueError, match=r"`backend`.*'jax', 'tensorflow'.*Received: backend='torch'"):
        runs.run(runs.RunConfig(backend="torch", epochs=1), out=tmp_path)
    with pytest.raises(ValueError, match="Callbacks cannot be passed"):
        runs.run(runs.RunConfig(backend=OTHER, epochs=1), out=tmp_path,
                 callbacks=[keras.callbacks.Callback()])


def test_backend_is_read_from_the_toml_run_file(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('backend = "torch"\nepochs = 1\n')
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "Received: backend='torch'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_study_workers_train_on_the_study_backend(tmp_path):
    config = kerasreg.StudyConfig(placements=["none"], seeds=[0, 1], epochs=1, backend=OTHER)
    kerasreg.run_study(config, tmp_path, workers=2, verbose=0)
    manifests = sorted((tmp_path / "runs").glob("*/manifest.json"))
    assert len(manifests) == 2
    assert {json.loads(p.read_text())["training"]["backend"] for p in manifests} == {OTHER}
    # Each of the two workers trains on its own share of the cores.
    share = max(1, _backend.available_cores() // 2)
    assert [json.loads(p.read_text())["training"]["cores"] for p in manifests] == [share, share]
    with pytest.raises(ValueError, match="for field `backend`"):
        kerasreg.StudyConfig(backend="torch").validate()


def test_import_picks_jax_unless_told_otherwise(tmp_path):
    # A JAX_COMPILATION_CACHE_DIR of the user's would win.
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "JAX_COMPILATION_CACHE_DIR")}
    code = (
        "import os, kerasreg, keras\n"
        "print(keras.backend.backend(), os.environ['KERAS_BACKEND'])\n"
        "from kerasreg import _backend\n"
        "print(_backend.cache_dir())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env={**env, "KERASREG_CACHE_DIR": str(tmp_path)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "jax jax"
    assert lines[1] == str(tmp_path / "jax" / importlib.metadata.version("jax"))  # one folder per JAX release


# Rate 0.2: Keras's own mask draw inside kerasreg's work too, so only the threefry variant differs.
DRAWS = """
import json, keras
from kerasreg import _backend
def draw():
    return keras.random.dropout(keras.ops.ones((4, 64)), 0.2, seed=keras.random.SeedGenerator(0)).tolist()
user = draw()
with _backend.jax_settings():
    ours = draw()
print(json.dumps({"user": user, "ours": ours, "user_after": draw()}))
"""


def test_kerasreg_draws_with_its_own_generator_and_the_users_draws_stay_as_they_were():
    # A run's processes (a resumed run, a study worker, an exporter) import in different orders.
    env = {k: v for k, v in os.environ.items() if k != "JAX_THREEFRY_PARTITIONABLE"}
    env["KERAS_BACKEND"] = "jax"
    answers = []
    for imports in ("import keras, kerasreg", "import kerasreg, keras", "import keras"):
        code = DRAWS if imports != "import keras" else DRAWS.replace(
            "from kerasreg import _backend\n", "import contextlib\n").replace("_backend.jax_settings()",
                                                                            "contextlib.nullcontext()")
        result = subprocess.run([sys.executable, "-c", f"{imports}\n{code}"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        answers.append(json.loads(result.stdout.splitlines()[-1]))
    with_kerasreg, imported_first, without = answers
    assert with_kerasreg["ours"] == imported_first["ours"] != without["ours"]
    for answer in answers:  # outside kerasreg's work: JAX's own generator, before and after
        assert answer["user"] == answer["user_after"] == without["user"]
    chosen = subprocess.run([sys.executable, "-c", f"import kerasreg\n{DRAWS}"], capture_output=True,
                            env={**env, "JAX_THREEFRY_PARTITIONABLE": "0"}, text=True, timeout=120)
    assert chosen.returncode == 0, chosen.stderr
    user_chose = json.loads(chosen.stdout.splitlines()[-1])
    assert user_chose["ours"] == user_chose["user"] == with_kerasreg["ours"], "the user's own choice is kept"


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's settings")
def test_a_users_jax_draws_and_settings_are_unchanged_after_kerasreg_trains(tmp_path):
    import jax

    names = ("jax_threefry_partitionable", "jax_compilation_cache_dir",
             "jax_persistent_cache_min_compile_time_secs", "jax_compilation_cache_max_size")
    settings = {name: getattr(jax.config, name) for name in names}
    before = jax.random.uniform(jax.random.key(0), (8,)).tolist()
    data = kerasreg.load_dataset("mnist1d")
    model = kerasreg.build_model("mlp", widths=(8,), input_shape=data.input_shape, num_classes=10, seed=0)
    kerasreg.train(model, data, epochs=1, verbose=0)
    assert {name: getattr(jax.config, name) for name in names} == settings
    assert jax.random.uniform(jax.random.key(0), (8,)).tolist() == before


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's compilation cache")
def test_a_cache_entry_left_unfinished_by_a_killed_process_does_not_stop_later_runs_caching(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASREG_CACHE_DIR", str(tmp_path))
    folder = _backend.cache_dir()
    folder.mkdir(parents=True)
    # What a process killed between writing an entry and its access time leaves.
    unfinished = folder / ("jit_train_step-" + "0" * 64 + "-cache")
    unfinished.write_bytes(b"half")
    data = kerasreg.load_dataset("mnist1d")
    model = kerasreg.build_model("mlp", widths=(8,), input_shape=data.input_shape, num_classes=10, seed=0)
    kerasreg.train(model, data, epochs=1, verbose=0)
    assert not unfinished.exists()
    written = sorted(p.name for p in folder.glob("jit_train_step-*-cache"))
    assert written, "the run's train step was not cached"
    assert all((folder / name.replace("-cache", "-atime")).exists() for name in written)


@pytest.mark.parametrize("env, code, source", [
    ({"KERAS_BACKEND": "torch"}, "import kerasreg", "KERAS_BACKEND='torch'"),
    # ~/.keras/keras.json chose the backend of a Keras imported before kerasreg.
    ({}, "import keras; import kerasreg", "keras.backend.backend()='numpy'"),
])
def test_another_backend_fails_clearly_at_import(tmp_path, env, code, source):
    (tmp_path / ".keras").mkdir()
    (tmp_path / ".keras" / "keras.json").write_text(json.dumps({"backend": "numpy"}))
    base = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", f"try:\n    {code}\nexcept ImportError as exc:\n    print(exc)\n"],
        env={**base, "HOME": str(tmp_path), **env}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert source in result.stdout
    assert "'jax', 'tensorflow'" in result.stdout


def test_parity_checks_pass_on_tensorflow():
    if BACKEND == "tensorflow":
        pytest.skip("this session runs on TensorFlow: its parity tests ran in it")
    tests = pathlib.Path(__file__).parent
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "parity", "-n", "0", "-q", "-p", "no:cacheprovider", "-W",
         "ignore::DeprecationWarning", *(str(tests / name) for name in PARITY_FILES)],
        env={**os.environ, "KERAS_BACKEND": "tensorflow"}, cwd=tests.parent,
        capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
