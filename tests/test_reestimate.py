"""reestimate_batch_norm: BN statistics recomputed on the train split with dropout off, on a copy or in place."""

import json

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.training import reestimation_metrics, variance_shift_max

# Many tiny models, each compiled for a step or two (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")


@pytest.fixture(scope="module")
def trained():
    """A drop_before_bn MLP trained a few epochs: dropout feeds BN, so the moving variance is inflated."""
    data = kerasreg.load_dataset("mnist1d")
    model = kerasreg.build_model("mlp", placement="drop_before_bn", dropout_rate=0.5,
                                 input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
    kerasreg.train(model, data, epochs=3, verbose=0)
    return data, model


def _bn_inputs(model, layer, x):
    """Inputs of `layer` in inference mode, through a Keras sub-model (independent of the implementation)."""
    return np.asarray(keras.Model(model.inputs[0], layer.input)(x, training=False))


def test_moving_statistics_become_the_inference_statistics_of_the_train_split(trained):
    data, model = trained
    before = [w.copy() for w in model.get_weights()]
    fixed = kerasreg.reestimate_batch_norm(model, data, batch_size=333)
    assert fixed is not model
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the trained model is untouched
    x_train = data.as_numpy("train")[0]
    layers = [layer for layer in fixed.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(layers) == 2
    for layer in layers:  # in order: the second layer's inputs already see the first one re-estimated
        inputs = _bn_inputs(fixed, layer, x_train)
        np.testing.assert_allclose(np.asarray(layer.moving_mean), inputs.mean(axis=0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(layer.moving_variance), inputs.var(axis=0), rtol=1e-3, atol=1e-5)
    trained_layers = {w.path for w in model.weights if "moving" not in w.path}
    for original, copied in zip(model.weights, fixed.weights):
        if original.path in trained_layers:
            np.testing.assert_array_equal(np.asarray(original), np.asarray(copied))


def test_the_variance_shift_disappears_on_training_data(trained):
    data, model = trained
    x_train = data.as_numpy("train")[0]
    fixed = kerasreg.reestimate_batch_norm(model, data)
    assert variance_shift_max(model, x_train) > 1.2, "dropout before BN shifted the variance"
    assert variance_shift_max(fixed, x_train) == pytest.approx(1.0, abs=0.01)


def test_in_place_updates_the_model_itself(trained):
    data, model = trained
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    same = kerasreg.reestimate_batch_norm(clone, data.as_numpy("train"), copy=False)
    assert same is clone
    expected = kerasreg.reestimate_batch_norm(model, data)
    for a, b in zip(expected.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_metrics_are_empty_without_batch_norm():
    data = kerasreg.load_dataset("mnist1d")
    model = kerasreg.build_model("mlp", placement="dropout", input_shape=data.input_shape, num_classes=10)
    assert reestimation_metrics(model, data) == {}


@pytest.mark.parametrize("kwargs, message", [({"batch_size": 0}, "batch_size"), ({"data": "train"}, "data")])
def test_bad_arguments_are_rejected(trained, kwargs, message):
    data, model = trained
    with pytest.raises(ValueError, match=message):
        kerasreg.reestimate_batch_norm(model, **{"data": data, **kwargs})


def test_a_run_records_the_remedy_and_can_export_the_reestimated_copy(tmp_path):
    config = kerasreg.RunConfig(placement="drop_before_bn", dropout_rate=0.5, epochs=2)
    path = kerasreg.run(config, out=tmp_path, verbose=0, export_reestimated=True)
    metrics = json.loads((path / "manifest.json").read_text())["metrics"]
    assert 0 < metrics["test_accuracy_reestimated"] <= 1 and metrics["variance_shift_reestimated"] >= 1
    extra = kerasreg.load(tmp_path / f"{path.name}-bn_reestimated")
    x_test, y_test = kerasreg.load_dataset("mnist1d").as_numpy("test")
    accuracy = float(np.mean(np.argmax(extra.predict(x_test), axis=-1) == y_test))
    assert accuracy == pytest.approx(metrics["test_accuracy_reestimated"], abs=1e-3)


def test_batch_norm_inside_a_nested_model_is_reestimated_too(trained):
    data, model = trained
    outer = keras.Sequential([keras.Input(data.input_shape), model])
    fixed = kerasreg.reestimate_batch_norm(outer, data)
    expected = kerasreg.reestimate_batch_norm(model, data)
    for a, b in zip(expected.get_weights(), fixed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [50, 10])  # 3 chunks per stage, run op by op; 13, compiled on JAX
def test_the_one_pass_over_a_graph_gives_the_statistics_of_one_pass_per_layer(monkeypatch, batch_size):
    from kerasreg.training import reestimate

    x = keras.Input((6,))
    h = keras.layers.Dense(8)(x)
    a = keras.layers.BatchNormalization()(keras.layers.Dropout(0.3)(h))
    b = keras.layers.BatchNormalization()(keras.ops.relu(h))
    out = keras.layers.Dense(3)(keras.layers.BatchNormalization()(keras.layers.Add()([a, b])))
    model = keras.Model(x, out)
    data = np.random.default_rng(1).normal(size=(130, 6)).astype("float32")
    one_pass = reestimate.reestimate_batch_norm(model, data, batch_size=batch_size)
    monkeypatch.setattr(reestimate, "_reestimate_in_one_pass", lambda *args: False)
    per_layer = reestimate.reestimate_batch_norm(model, data, batch_size=batch_size)
    for a, b in zip(one_pass.get_weights(), per_layer.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(one_pass.get_weights()[-3], model.get_weights()[-3])  # statistics did change


def test_large_rows_are_measured_in_chunks_with_the_statistics_of_all_rows():
    from kerasreg.training.evaluator import rows_per_chunk

    x = np.random.default_rng(2).normal(size=(150, 64, 64, 4)).astype("float32")
    assert rows_per_chunk(x, 1000) == 64  # three chunks, the last one padded
    inputs = keras.Input(x.shape[1:])
    h = keras.layers.BatchNormalization()(keras.layers.Conv2D(3, 3)(inputs))
    h = keras.layers.BatchNormalization()(keras.layers.Dropout(0.5)(keras.layers.Conv2D(2, 3, strides=2)(h)))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    fixed = kerasreg.reestimate_batch_norm(model, x)
    for layer in [layer for layer in fixed.layers if isinstance(layer, keras.layers.BatchNormalization)]:
        measured = _bn_inputs(fixed, layer, x).reshape(-1, layer.moving_mean.shape[0])
        np.testing.assert_allclose(np.asarray(layer.moving_mean), measured.mean(axis=0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(layer.moving_variance), measured.var(axis=0), rtol=1e-3, atol=1e-5)


def test_a_padding_rows_infinite_output_does_not_enter_the_statistics():
    # 130 rows in chunks of 50: the last chunk's 20 padding rows are zeros, and log(0) is -inf.
    x = np.random.default_rng(3).uniform(0.5, 2.0, size=(130, 6)).astype("float32")
    inputs = keras.Input((6,))
    h = keras.layers.BatchNormalization()(keras.ops.log(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    layer = [layer for layer in kerasreg.reestimate_batch_norm(model, x, batch_size=50).layers
             if isinstance(layer, keras.layers.BatchNormalization)][0]
    np.testing.assert_allclose(np.asarray(layer.moving_mean), np.log(x).mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), np.log(x).var(axis=0), rtol=1e-4, atol=1e-6)
