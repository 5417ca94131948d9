"""Tests of kerasreg.export: layout, manifest, atomic writes, checksums, folding, fresh-process loads."""

import dataclasses
import json
import os
import pathlib
import shutil

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import _backend
from kerasreg.export import writer as export_lib
from kerasreg.data import load_dataset
from kerasreg.training import train

from helpers import randomize_batch_norm, run_python

# Runs of an epoch or two, here and in the processes started: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")


def _tiny(placement="bn_act_drop", api="functional", seed=0):
    return kerasreg.build_model("mlp", placement=placement, api=api, widths=(16, 16),
                                input_shape=(8, 8, 1), num_classes=10, seed=seed)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_dataset("digits", data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def result(data, tmp_path_factory):
    model = kerasreg.build_model("mlp", placement="bn_act_drop", widths=(16, 16),
                                 input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
    result = train(model, data, epochs=2, learning_rate=1e-2, verbose=0)
    # Stand-ins for what train() leaves in a run directory.
    run_dir = tmp_path_factory.mktemp("run")
    (run_dir / "gaps.jsonl").write_text('{"epoch": 0}\n{"epoch": 1}\n')
    (run_dir / "variance_shift.jsonl").write_text('{"epoch": 0}\n{"epoch": 1}\n')
    (run_dir / "logs" / "train").mkdir(parents=True)
    (run_dir / "logs" / "train" / "events.out.tfevents.1").write_bytes(b"\x00event")
    return dataclasses.replace(result, run_dir=run_dir)


@pytest.fixture(scope="module")
def exported(result, tmp_path_factory):
    return kerasreg.export_run(result, out=tmp_path_factory.mktemp("exports") / "saved_models", fold_bn=True)


def test_a_relative_out_is_the_callers_current_folder_at_each_export(result, tmp_path, monkeypatch):
    for folder in ("first", "second"):  # the export worker started in the first folder and stays there
        monkeypatch.chdir((tmp_path / folder).mkdir() or tmp_path / folder)
        path = kerasreg.export_run(result, out="saved_models")
        assert (tmp_path / folder / path / "saved_model" / "saved_model.pb").is_file()
        kerasreg.verify_export(tmp_path / folder / path)


def test_run_name():
    config = {"model": "mlp", "placement": "bn_act_drop", "block": ["weight", "norm", "act", "drop"],
              "dropout_scope": "every_block", "dropout": "standard", "dropout_rate": 0.2,
              "norm": "batch", "bn_preset": "keras", "seed": 0}
    assert kerasreg.run_name(config) == "mlp-bn_act_drop-standard0.2-seed0"
    no_drop = {**config, "placement": "bn_before_act", "block": ["weight", "norm", "act"]}
    assert kerasreg.run_name(no_drop) == "mlp-bn_before_act-nodrop-seed0"
    other = {**config, "norm": "layer", "bn_preset": "torch", "seed": 3, "dropout_rate": 0.25}
    assert kerasreg.run_name(other) == "mlp-bn_act_drop-standard0.25-layernorm-torchbn-seed3"
    assert kerasreg.run_name(_tiny(placement="head_dropout")) == "mlp-head_dropout-standard0.2-seed0"
    # Without `block`, the registered placement says whether there is dropout.
    short = {"model": "mlp", "placement": "bn_before_act", "dropout": None, "dropout_rate": 0.2, "seed": 0}
    assert kerasreg.run_name(short) == "mlp-bn_before_act-nodrop-seed0"
    assert kerasreg.run_name({**short, "placement": "uout"}) == "mlp-uout-uout0.2-seed0"
    assert kerasreg.run_name({"model": "my net/v2"}) == "my_net_v2"


def test_export_layout_and_manifest(exported, result):
    assert exported.name == "mlp-bn_act_drop-standard0.2-seed0"
    for name in ("saved_model/saved_model.pb", "saved_model_folded/saved_model.pb", "model.keras",
                 "history.csv", "manifest.json", "gaps.jsonl", "variance_shift.jsonl",
                 "logs/train/events.out.tfevents.1"):
        assert (exported / name).is_file(), name
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["schema"] == "kerasreg.export/1"
    assert set(manifest["versions"]) == {"kerasreg", "tensorflow", "keras", "python"}
    model = manifest["model"]
    assert (model["architecture"], model["placement"], model["dropout"], model["dropout_rate"],
            model["norm"]) == ("mlp", "bn_act_drop", "standard", 0.2, "batch")
    assert model["parameters"] == result.model.count_params()
    assert manifest["input"] == {"shape": [8, 8, 1], "dtype": "float32", "name": "inputs"}
    assert manifest["num_classes"] == 10
    assert manifest["dataset"] == {"name": "digits", "validation_split": 0.1, "split_seed": 0,
                                   "standardize": False, "source_sha256": None}
    assert manifest["seed"] == 0
    assert manifest["backend"] == manifest["training"]["backend"] == keras.backend.backend()
    assert manifest["training"]["cores"] == _backend.available_cores()
    metrics = manifest["metrics"]
    assert metrics["val_accuracy"] == pytest.approx(result.val_metrics["accuracy"])
    assert metrics["test_loss"] == pytest.approx(result.test_metrics["loss"])
    assert metrics["clean_gap_accuracy"] == pytest.approx(result.gaps["clean_gap_accuracy"])
    assert metrics["variance_shift_max"] == pytest.approx(result.variance_shift_max)
    assert metrics["epoch_time_total"] == pytest.approx(sum(result.epoch_times))
    assert manifest["folded"]["pairs"] == [["block1_weight", "block1_norm"], ["block2_weight", "block2_norm"]]
    on_disk = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == [p for p in on_disk if p != "manifest.json"]
    history = kerasreg.load(exported).history
    assert history["val_accuracy"] == pytest.approx(result.history["val_accuracy"])
    assert len(history["clean_gap_accuracy"]) == 2


def test_load_predicts_through_saved_model_and_keras(exported, result, data):
    x, _ = data.as_numpy("test")
    expected = result.model.predict(x, verbose=0)
    export = kerasreg.load(exported)
    assert export.manifest["name"] == exported.name
    np.testing.assert_allclose(export.predict(x), expected, atol=1e-6)
    model = export.keras_model()
    assert model.kerasreg_config["placement"] == "bn_act_drop"
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    # Folding is exact up to float rounding on real data too.
    np.testing.assert_allclose(export.predict(x, folded=True), expected, atol=1e-5)


def test_bare_model_export(tmp_path):
    model = _tiny(api="sequential")
    path = kerasreg.export_run(model, out=tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["metrics"] is None and manifest["dataset"] is None and manifest["folded"] is None
    assert not (path / "history.csv").exists()
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype="float32")
    np.testing.assert_allclose(kerasreg.load(path).predict(x), model.predict(x, verbose=0), atol=1e-6)


def test_existing_export_is_never_overwritten(tmp_path):
    first, second = _tiny(seed=1), _tiny(seed=2)
    path = kerasreg.export_run(first, out=tmp_path, name="run")
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}

    with pytest.raises(kerasreg.ExportExistsError, match="run already exists.*overwrite"):
        kerasreg.export_run(second, out=tmp_path, name="run")
    with pytest.raises(kerasreg.ExportExistsError, match="already exists"):
        kerasreg.check_export_target(tmp_path, "run")
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before
    assert kerasreg.check_export_target(tmp_path, "other") == tmp_path / "other"
    assert kerasreg.check_export_target(tmp_path, "run", overwrite=True) == path

    kerasreg.export_run(second, out=tmp_path, name="run", overwrite=True)
    x = np.ones((2, 8, 8, 1), "float32")
    np.testing.assert_allclose(kerasreg.load(path).predict(x), second.predict(x, verbose=0), atol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no temporary or trash folder left

    (tmp_path / "notes").mkdir()
    with pytest.raises(kerasreg.ExportExistsError, match="not a kerasreg export"):
        kerasreg.export_run(second, out=tmp_path, name="notes", overwrite=True)
    with pytest.raises(ValueError, match="Invalid value received for argument `name`"):
        kerasreg.check_export_target(tmp_path, "../escape")


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    model = _tiny()
    kerasreg.export_run(model, out=tmp_path, name="kept")
    kept = (tmp_path / "kept" / "manifest.json").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_lib, "_manifest", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        kerasreg.export_run(model, out=tmp_path, name="new")
    with pytest.raises(RuntimeError, match="disk full"):
        kerasreg.export_run(model, out=tmp_path, name="kept", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["kept"]
    assert (tmp_path / "kept" / "manifest.json").read_bytes() == kept


def test_load_rejects_tampered_and_non_exports(exported, tmp_path):
    def copy(name):
        return shutil.copytree(exported, tmp_path / name)

    changed = copy("changed")
    with open(changed / "model.keras", "ab") as f:
        f.write(b"\0")
    with pytest.raises(kerasreg.ExportIntegrityError, match=r"changed file model\.keras"):
        kerasreg.load(changed)

    weights = copy("weights")
    data_file = next((weights / "saved_model" / "variables").glob("variables.data-*"))
    data_file.write_bytes(data_file.read_bytes()[::-1])
    with pytest.raises(kerasreg.ExportIntegrityError, match="changed file saved_model/variables/variables.data"):
        kerasreg.load(weights)

    missing = copy("missing")
    (missing / "saved_model" / "variables" / "variables.index").unlink()
    with pytest.raises(kerasreg.ExportIntegrityError, match="missing file saved_model/variables/variables.index"):
        kerasreg.load(missing)

    tampered = copy("tampered")
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["metrics"]["test_accuracy"] = 0.999
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(kerasreg.ExportIntegrityError, match=r"manifest\.json was modified"):
        kerasreg.load(tampered)

    unlisted = copy("unlisted")
    (unlisted / "notes.txt").write_text("hello")
    with pytest.raises(kerasreg.ExportIntegrityError, match=r"unlisted file notes\.txt"):
        kerasreg.load(unlisted)

    garbled = copy("garbled")
    (garbled / "manifest.json").write_text("{not json")
    with pytest.raises(kerasreg.ExportIntegrityError, match="not valid JSON"):
        kerasreg.load(garbled)

    (tmp_path / "plain").mkdir()
    with pytest.raises(kerasreg.NotAnExportError, match="plain is not a kerasreg export"):
        kerasreg.load(tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        kerasreg.load(tmp_path / "nowhere")


@pytest.mark.parametrize("arch,placement,api,folds", [
    ("mlp", "bn_before_act", "sequential", 2),
    ("mlp", "head_dropout", "functional", 2),
    ("mlp", "bn_after_act", "functional", 0),
    ("mlp", "drop_before_bn", "sequential", 0),
    ("cnn1d", "bn_act_drop", "sequential", 2),
    ("cnn2d", "uout", "functional", 2),
    ("resnet_small", "bn_before_act", "functional", 3),
])
@pytest.mark.parity
def test_fold_batch_norm_matches_unfolded(arch, placement, api, folds):
    shape = (8, 8, 1) if arch == "cnn2d" else (40,)
    options = {"mlp": {"widths": (16, 16)}, "cnn1d": {"filters": (4, 8)}, "cnn2d": {"filters": (4, 8)},
               "resnet_small": {"filters": 4, "stages": 1}}[arch]
    model = kerasreg.build_model(arch, placement=placement, api=api, input_shape=shape,
                                 num_classes=10, seed=0, **options)
    randomize_batch_norm(model)
    folded = kerasreg.fold_batch_norm(model)
    assert len(folded.folded_pairs) == folds
    norms = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers) == norms - folds
    x = np.random.default_rng(1).normal(size=(16, *shape)).astype("float32")
    np.testing.assert_allclose(folded(x, training=False), model(x, training=False), atol=1e-5)


_FRESH_PROCESS = r"""
import json, os, shutil, subprocess, sys
import numpy as np
import tensorflow as tf
import keras

export, inputs = sys.argv[1], np.load(sys.argv[2])
saved_model = os.path.join(export, "saved_model")
cli = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable)) or shutil.which("saved_model_cli")
show = subprocess.Popen([cli, "show", "--dir", saved_model, "--all"], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)

signature = tf.saved_model.load(saved_model).signatures["serving_default"]
by_signature = signature(inputs=tf.constant(inputs))["output_0"].numpy()
layer = keras.layers.TFSMLayer(saved_model, call_endpoint="serving_default")
by_layer = np.asarray(layer(inputs)["output_0"])

tflite = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
interpreter = tf.lite.Interpreter(model_content=tflite)
index = interpreter.get_input_details()[0]["index"]
interpreter.resize_tensor_input(index, list(inputs.shape))
interpreter.allocate_tensors()
interpreter.set_tensor(index, inputs)
interpreter.invoke()
by_tflite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

shown = show.communicate()[0]
np.savez(sys.argv[3], signature=by_signature, layer=by_layer, tflite=by_tflite)
print(json.dumps({"cli_returncode": show.returncode, "cli": shown,
                  "kerasreg_imported": any(m.startswith("kerasreg") for m in sys.modules)}))
"""


@pytest.mark.slow
def test_export_loads_without_kerasreg_in_fresh_process(exported, data, tmp_path):
    x, _ = data.as_numpy("test")
    x = x[:64]
    expected = kerasreg.load(exported).predict(x)
    np.save(tmp_path / "x.npy", x)
    # Trained on this session's backend (JAX by default); served by TensorFlow alone, as a user serves it.
    result = run_python(_FRESH_PROCESS, exported, tmp_path / "x.npy", tmp_path / "out.npz", timeout=300,
                        env={"KERAS_BACKEND": "tensorflow"})
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["kerasreg_imported"]
    assert report["cli_returncode"] == 0, report["cli"]
    assert "signature_def['serving_default']" in report["cli"]
    assert "signature_def['serve']" in report["cli"]
    assert "shape: (-1, 8, 8, 1)" in report["cli"]
    outputs = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(outputs["signature"], expected, atol=1e-6)
    np.testing.assert_allclose(outputs["layer"], expected, atol=1e-6)
    np.testing.assert_allclose(outputs["tflite"], expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["tflite"].argmax(axis=1), expected.argmax(axis=1))


def test_an_export_written_by_kerasreg_0_1_still_loads():
    fixture = pathlib.Path(__file__).parent / "fixtures" / "export_v0_1"
    export = kerasreg.load(fixture)
    assert export.manifest["versions"]["kerasreg"] == "0.1.0"
    x = np.random.default_rng(0).normal(size=(4, 40)).astype("float32")
    keras_model = export.keras_model()
    assert keras_model.kerasreg_config["placement"] == "bn_act_drop"
    np.testing.assert_allclose(export.predict(x), keras_model(x, training=False), atol=1e-5)
