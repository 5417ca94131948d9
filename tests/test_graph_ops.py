"""A forged export runs nothing: SavedModel ops outside the inference allow-list are refused before loading.

Each forged export here carries recomputed checksums and a re-signed
manifest, as a forger would write it, so only the graph check stands in
the way. The forgery is shown to be real: loaded directly, it writes its
file.
"""

import json
import pathlib
import shutil

import pytest
import tensorflow as tf

import kerasreg
from kerasreg.cli import main
from kerasreg.export import UnsafeSavedModelError, layout

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "export_v0_1"


def reseal(path):
    """Recompute every file's checksum and re-sign the manifest."""
    manifest = json.loads((path / layout.MANIFEST).read_text())
    present, _ = layout.walk_export(path)
    manifest["files"] = {rel: layout.sha256(path / rel) for rel in present}
    manifest["manifest_sha256"] = layout.manifest_digest(manifest)
    (path / layout.MANIFEST).write_text(json.dumps(manifest))


class FileWriter(tf.Module):
    """Serves zeros of the export's output shape, and writes a file on every call."""

    def __init__(self, target):
        super().__init__()
        self.target = str(target)

    @tf.function(input_signature=[tf.TensorSpec((None, 40), tf.float32, name=layout.INPUT_NAME)])
    def serve(self, x):
        tf.io.write_file(self.target, "written by a forged export")
        return {layout.OUTPUT_NAME: tf.nn.softmax(tf.zeros((tf.shape(x)[0], 10)))}


@pytest.fixture
def forged(tmp_path):
    """A copy of a real export whose SavedModel writes `tmp_path / "outside.txt"`, resealed."""
    path = shutil.copytree(FIXTURE, tmp_path / "export")
    target = tmp_path / "outside.txt"
    shutil.rmtree(path / layout.SAVED_MODEL)
    module = FileWriter(target)
    tf.saved_model.save(module, str(path / layout.SAVED_MODEL), signatures={"serving_default": module.serve})
    reseal(path)
    return path, target


def test_the_forged_savedmodel_really_writes_a_file_when_loaded_directly(forged):
    path, target = forged
    tf.saved_model.load(str(path / layout.SAVED_MODEL)).signatures["serving_default"](
        **{layout.INPUT_NAME: tf.zeros((1, 40))})
    assert target.read_text() == "written by a forged export"


def test_load_refuses_a_forged_export_naming_the_op_and_runs_nothing(forged):
    path, target = forged
    with pytest.raises(UnsafeSavedModelError, match=r"WriteFile \(in function __inference_serve_\d+\)"):
        kerasreg.load(path)
    assert not target.exists()


def test_compare_refuses_a_forged_export_with_exit_2_and_writes_nothing(forged, tmp_path, capsys):
    path, target = forged
    assert main(["compare", str(path), "--out", str(tmp_path / "table")]) == 2
    error = capsys.readouterr().err
    assert "WriteFile" in error and str(path) in error and "tf.saved_model.load" in error
    assert not target.exists()


def test_diagnose_verifies_an_export_as_load_does(tmp_path, capsys):
    swapped = shutil.copytree(FIXTURE, tmp_path / "swapped")
    keras_model = kerasreg.build_model("mlp", placement="none", input_shape=(40,), num_classes=10, seed=1)
    keras_model.save(swapped / layout.MODEL_FILE)
    assert main(["diagnose", str(swapped)]) == 2
    assert "changed file model.keras" in capsys.readouterr().err
    assert main(["diagnose", str(swapped / layout.MODEL_FILE)]) == 2
    assert "changed file model.keras" in capsys.readouterr().err


def test_a_kerasreg_export_passes_the_graph_check(tmp_path):
    model = kerasreg.build_model("resnet_small", placement="bn_act_drop", dropout_rate=0.5,
                                 input_shape=(8, 8, 1), num_classes=10, seed=0)
    path = kerasreg.export_run(model, out=tmp_path, name="resnet", fold_bn=True)
    export = kerasreg.load(path)
    assert export.predict(tf.zeros((2, 8, 8, 1))).shape == (2, 10)


def test_a_tensorflow_1_savedmodel_is_refused(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    folder = tmp_path / "tf1"
    folder.mkdir()
    saved = saved_model_pb2.SavedModel()
    saved.meta_graphs.add().graph_def.node.add(name="x", op="Placeholder")
    (folder / "saved_model.pb").write_bytes(saved.SerializeToString())
    with pytest.raises(UnsafeSavedModelError, match="no TensorFlow 2 object graph"):
        from kerasreg.export.graph_ops import check_saved_model

        check_saved_model(folder)
