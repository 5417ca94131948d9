"""Tests of the image architectures: `resnet_cifar`'s strided stages, its published size, every placement on
28x28x1 images, BatchNorm folding, and its export served by TensorFlow and TFLite."""

import json

import keras
import numpy as np
import pytest

import kerasreg
from helpers import assert_placement_order, build_small, randomize_batch_norm, run_python

# Tiny models built for a step or two: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

MNIST = (28, 28, 1)
# 28x28x1 at widths small enough for a test; one unit per stage keeps both kinds of projection.
TINY = {"filters": (4, 8, 8), "blocks_per_stage": 1}


def _tiny(placement="bn_act_drop", input_shape=MNIST, **kwargs):
    return kerasreg.build_model("resnet_cifar", placement=placement, input_shape=input_shape, num_classes=10,
                                seed=0, **{**TINY, **kwargs})


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("blocks_per_stage,layers,published", [(3, 20, 0.27e6), (5, 32, 0.46e6)])
def test_resnet_cifar_has_the_parameter_count_he_et_al_publish(blocks_per_stage, layers, published):
    """He et al. 2016, Table 6: ResNet-20 0.27 M and ResNet-32 0.46 M parameters on CIFAR-10 (32x32x3, 10 classes)."""
    model = kerasreg.build_model("resnet_cifar", input_shape=(32, 32, 3), num_classes=10,
                                 blocks_per_stage=blocks_per_stage)
    weights = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    projections = [layer for layer in weights if layer.name.endswith("_shortcut")]
    assert len(weights) - len(projections) == layers  # 6n + 2: the stem, 6n branch convolutions, the head
    assert model.count_params() == pytest.approx(published, rel=0.03)


@pytest.mark.parametrize("input_shape,sides", [((32, 32, 3), (32, 16, 8)), (MNIST, (28, 14, 7)),
                                               ((8, 8, 1), (8, 4, 2)), ((40,), (40, 20, 10))])
def test_resnet_cifar_halves_the_resolution_and_widens_between_stages(input_shape, sides):
    dims = 2 if len(input_shape) == 3 else 1
    model = kerasreg.build_model("resnet_cifar", input_shape=input_shape, num_classes=10, blocks_per_stage=2)
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert [layer.name for layer in adds] == [f"res{s}_{u}_add" for s in (1, 2, 3) for u in (1, 2)]
    assert [layer.output.shape[1:-1] for layer in adds] == [(side,) * dims for side in sides for _ in (1, 2)]
    assert [layer.output.shape[-1] for layer in adds] == [16, 16, 32, 32, 64, 64]
    # A projection exactly where the shape changes: the first unit of stages 2 and 3.
    shortcuts = [layer for layer in model.layers if layer.name.endswith("_shortcut")]
    assert [(s.name, s.filters, tuple(s.kernel_size), tuple(s.strides)) for s in shortcuts] == [
        ("res2_1_shortcut", 32, (1,) * dims, (2,) * dims), ("res3_1_shortcut", 64, (1,) * dims, (2,) * dims)]


def test_resnet_small_keeps_every_unit_at_stride_one_with_identity_skips():
    """The quick study's deep arm: resnet_small's units neither stride nor project, on signals or images."""
    for shape in ((40,), (8, 8, 1)):
        model = kerasreg.build_model("resnet_small", input_shape=shape, num_classes=10, stages=3, seed=0)
        convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D))]
        assert len(convs) == 7 and all(set(layer.strides) == {1} for layer in convs)
        assert all(layer.output.shape[-1] == 32 for layer in convs)
        assert not [layer for layer in model.layers if layer.name.endswith("_shortcut")]


def test_a_projection_is_the_strided_1x1_convolution_of_the_units_input():
    """With zeroed second-branch weights a strided unit outputs exactly its shortcut: conv1x1(x[::2, ::2])."""
    model = _tiny(placement="bn_before_act", dropout_rate=0)
    unit = model.get_layer("res2_1b_weight")
    unit.kernel.assign(np.zeros(unit.kernel.shape, "float32"))
    unit.bias.assign(np.zeros(unit.bias.shape, "float32"))
    x = np.random.default_rng(0).normal(size=(2, *MNIST)).astype("float32")
    before = _numpy(keras.Model(model.input, model.get_layer("res1_1_add").output)(x))
    after = _numpy(keras.Model(model.input, model.get_layer("res2_1_add").output)(x))
    shortcut = model.get_layer("res2_1_shortcut")
    kernel, bias = (_numpy(w) for w in shortcut.weights)
    expected = before[:, ::2, ::2, :] @ kernel[0, 0] + bias  # the b-branch ends in ReLU(BN(0)) = ReLU(beta) = 0
    np.testing.assert_allclose(after, expected, atol=1e-5)


@pytest.mark.parametrize("placement", kerasreg.list_placements())
def test_every_placement_builds_and_trains_on_28x28_images(placement):
    p = kerasreg.get_placement(placement)
    model = _tiny(placement=placement)
    assert_placement_order(model, p, 7)
    x = np.random.default_rng(0).normal(size=(4, *MNIST)).astype("float32")
    inference = _numpy(model(x, training=False))
    training = _numpy(model(x, training=True))
    for y in (inference, training):
        assert y.shape == (4, 10) and np.isfinite(y).all()
    if p.uses_dropout or p.uses_norm:
        assert not np.allclose(training, inference)
    if placement != "bn_act_drop":  # one compiled step is enough: the 8x8 matrix of test_factory steps each
        return
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = _numpy(model.get_layer("res2_1_shortcut").kernel)
    assert np.isfinite(model.train_on_batch(x, np.arange(4)))
    assert not np.array_equal(before, _numpy(model.get_layer("res2_1_shortcut").kernel)), "projection must train"


def test_describe_shows_each_projection_before_its_sum():
    text = kerasreg.describe(build_small("resnet_cifar", placement="bn_before_act"))
    assert text == ("Conv2D(4, 3x3) > BatchNorm > ReLU > Conv2D(4, 3x3) > BatchNorm > ReLU > Conv2D(4, 3x3) > "
                    "BatchNorm > ReLU > + skip > Conv2D(8, 3x3) > BatchNorm > ReLU > Conv2D(8, 3x3) > BatchNorm > "
                    "ReLU > Conv2D(8, 1x1) > + skip  x2 > GlobalAveragePooling2D > Dense(3)")


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True])
def test_bad_blocks_per_stage_raises(value):
    with pytest.raises(ValueError, match=r"argument `blocks_per_stage`\. Expected a positive int\. "
                                         rf"Received: blocks_per_stage={value!r}"):
        _tiny(blocks_per_stage=value)


@pytest.mark.parametrize("placement,folds", [("bn_before_act", 7), ("bn_act_drop", 7), ("drop_before_bn", 0)])
def test_batch_norm_folds_into_the_branch_convolutions(placement, folds):
    model = _tiny(placement=placement)
    randomize_batch_norm(model)
    rng = np.random.default_rng(1)
    folded = kerasreg.fold_batch_norm(model)
    assert len(folded.folded_pairs) == folds
    assert not any(pair[0].endswith("_shortcut") for pair in folded.folded_pairs)
    x = rng.normal(size=(8, *MNIST)).astype("float32")
    np.testing.assert_allclose(_numpy(folded(x, training=False)), _numpy(model(x, training=False)), atol=1e-5)


_SERVE = r"""
import json, os, sys
import numpy as np
import tensorflow as tf

export, x = sys.argv[1], np.load(sys.argv[2])
outputs = {}
for folder in ("saved_model", "saved_model_folded"):
    path = os.path.join(export, folder)
    outputs[folder] = tf.saved_model.load(path).signatures["serving_default"](inputs=tf.constant(x))["output_0"].numpy()
    interpreter = tf.lite.Interpreter(model_content=tf.lite.TFLiteConverter.from_saved_model(path).convert())
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    outputs[folder + "_tflite"] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
np.savez(sys.argv[3], **outputs)
print(json.dumps({"kerasreg_imported": any(m.startswith("kerasreg") for m in sys.modules)}))
"""


@pytest.mark.slow
def test_export_of_28x28_resnet_cifar_serves_in_tensorflow_and_tflite_without_kerasreg(tmp_path):
    model = _tiny(placement="bn_act_drop")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, *MNIST)).astype("float32"), np.arange(32) % 10, epochs=1, verbose=0)
    path = kerasreg.export_run(model, out=tmp_path, name="resnet_cifar", fold_bn=True)
    x = rng.normal(size=(5, *MNIST)).astype("float32")
    expected = _numpy(model(x, training=False))
    reloaded = keras.saving.load_model(path / "model.keras")
    np.testing.assert_allclose(_numpy(reloaded(x, training=False)), expected, atol=1e-6)
    assert kerasreg.load(path).manifest["folded"]["pairs"]
    np.save(tmp_path / "x.npy", x)
    result = run_python(_SERVE, path, tmp_path / "x.npy", tmp_path / "out.npz", timeout=300,
                        env={"KERAS_BACKEND": "tensorflow"})
    assert not json.loads(result.stdout.strip().splitlines()[-1])["kerasreg_imported"]
    outputs = np.load(tmp_path / "out.npz")
    for name in outputs.files:
        np.testing.assert_allclose(outputs[name], expected, atol=1e-5, err_msg=name)
