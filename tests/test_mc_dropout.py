"""Tests of kerasreg.predict_mc: dropout on, BatchNormalization in inference mode."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.analysis.mc_dropout import mc_dropout_model

# Models trained for an epoch or two: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")


def _odd_batch_norm(model, seed=0):
    """Moving statistics far from any batch's own, so BN's mode shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(size=n))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n))
    return model


def _moving_statistics(model):
    return [v.numpy().copy() for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)]


def _build(arch="mlp", placement="bn_act_drop", api="functional", rate=0.5, **options):
    options = options or ({"widths": (16, 16)} if arch == "mlp" else {"filters": 4, "stages": 1})
    model = kerasreg.build_model(arch, placement=placement, api=api, dropout_rate=rate,
                                 input_shape=(40,), num_classes=10, seed=0, **options)
    return _odd_batch_norm(model)


X = np.random.default_rng(0).normal(size=(32, 40)).astype("float32")


@pytest.mark.parity
@pytest.mark.parametrize("arch,api", [("mlp", "sequential"), ("mlp", "functional"), ("resnet_small", "functional")])
def test_batch_norm_stays_in_inference_mode(arch, api):
    # With a vanishing dropout rate every sample equals the inference-mode output,
    # which `model(x, training=True)` (batch statistics) would not.
    model = _build(arch, api=api, rate=1e-7)
    inference = keras.ops.convert_to_numpy(model(X, training=False))
    statistics = _moving_statistics(model)
    mean, std = kerasreg.predict_mc(model, X, samples=3)
    np.testing.assert_allclose(mean, inference, atol=1e-5)
    np.testing.assert_allclose(std, 0.0, atol=1e-5)
    for before, after in zip(statistics, _moving_statistics(model)):
        np.testing.assert_array_equal(before, after)
    training_mode = keras.ops.convert_to_numpy(model(X, training=True))
    assert np.abs(training_mode - inference).max() > 0.05  # the shortcut really is different here


@pytest.mark.parametrize("placement,dropout", [
    ("bn_act_drop", "standard"), ("uout", None), ("drop_before_bn", "gaussian"), ("head_dropout", "alpha"),
])
@pytest.mark.parity
def test_dropout_is_active_and_reproducible(placement, dropout):
    model = kerasreg.build_model("mlp", placement=placement, dropout=dropout, dropout_rate=0.3,
                                 widths=(16, 16), input_shape=(40,), num_classes=10, seed=0)
    _odd_batch_norm(model)
    statistics = _moving_statistics(model)
    mean, std = kerasreg.predict_mc(model, X, samples=20, seed=1)
    assert mean.shape == std.shape == (32, 10)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)
    assert std.mean() > 1e-3
    again = kerasreg.predict_mc(model, X, samples=20, seed=1)
    np.testing.assert_array_equal(again.mean, mean)
    other = kerasreg.predict_mc(model, X, samples=20, seed=2)
    assert not np.array_equal(other.mean, mean)
    for before, after in zip(statistics, _moving_statistics(model)):
        np.testing.assert_array_equal(before, after)


def test_spatial_dropout_in_a_cnn():
    model = kerasreg.build_model("cnn1d", placement="bn_act_drop", dropout="spatial", dropout_rate=0.3,
                                 filters=(4, 4), input_shape=(40,), num_classes=10, seed=0)
    sampler = mc_dropout_model(model)
    assert sampler.dropout_layer_count == 2
    assert kerasreg.predict_mc(model, X, samples=5).std.mean() > 0


def test_loaded_export(tmp_path):
    model = _build(rate=1e-7)
    path = kerasreg.export_run(model, out=tmp_path)
    mean, _ = kerasreg.predict_mc(kerasreg.load(path), X, samples=2)
    np.testing.assert_allclose(mean, kerasreg.load(path).predict(X), atol=1e-5)
    mean_from_path, _ = kerasreg.predict_mc(path, X, samples=2)
    np.testing.assert_allclose(mean_from_path, mean, atol=1e-6)


def test_bad_input():
    model = _build(placement="bn_before_act")
    with pytest.warns(UserWarning, match="no dropout-kind layer"):
        _, std = kerasreg.predict_mc(model, X, samples=2)
    np.testing.assert_array_equal(std, 0.0)
    with pytest.raises(ValueError, match="Expected a positive int. Received: samples=0"):
        kerasreg.predict_mc(model, X, samples=0)
    with pytest.raises(TypeError, match="predict_mc expects a keras.Model"):
        kerasreg.predict_mc(object(), X)


def test_samples_may_be_a_numpy_integer_as_everywhere_else():
    model = _build(placement="bn_act_drop")
    mean, std = kerasreg.predict_mc(model, X, samples=np.int64(3))
    assert mean.shape == std.shape == (len(X), model.output_shape[-1])
    with pytest.raises(ValueError, match="Received: samples=True"):
        kerasreg.predict_mc(model, X, samples=True)
