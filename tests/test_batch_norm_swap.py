"""set_batch_norm: a new model with BatchNorm given a new momentum or replaced by GroupNorm, every weight copied."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.training import batch_norm_layers

L = keras.layers


def _sequential():
    return keras.Sequential([keras.Input((6,)), L.Dense(64, name="d1"), L.BatchNormalization(name="bn1"),
                             L.ReLU(), L.Dense(3, name="out")])


def _functional():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(16, 3, padding="same", name="conv")(inputs)
    x = L.BatchNormalization(name="bn", scale=False)(x)
    skip = L.BatchNormalization(name="bn_skip", epsilon=1e-5)(L.Conv2D(16, 1, name="proj")(inputs))
    x = L.GlobalAveragePooling2D()(L.Add()([x, skip]))
    return keras.Model(inputs, L.Dense(2, name="out")(x))


def _with_statistics(model, seed=0):
    """Moving statistics and scales that are not the initial ones, so copying them is visible."""
    rng = np.random.default_rng(seed)
    for layer in batch_norm_layers(model):
        layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=layer.moving_variance.shape))
        for weight in (layer.gamma, layer.beta):
            if weight is not None:
                weight.assign(rng.normal(size=weight.shape))
    return model


def _snapshot(model):
    return [w.copy() for w in model.get_weights()], [layer.momentum for layer in batch_norm_layers(model)]


@pytest.mark.parametrize("build, shape", [(_sequential, (6,)), (_functional, (8, 8, 3))])
def test_a_new_momentum_keeps_every_weight_and_output_and_leaves_the_model_untouched(build, shape):
    model = _with_statistics(build())
    before = _snapshot(model)
    x = np.random.default_rng(1).normal(size=(5, *shape)).astype("float32")
    faster = kerasreg.set_batch_norm(model, momentum=0.9)
    assert faster is not model and type(faster) is type(model)
    assert [layer.momentum for layer in batch_norm_layers(faster)] == [0.9] * len(before[1])
    for old, new in zip(model.get_weights(), faster.get_weights()):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(faster(x, training=False), model(x, training=False), rtol=0, atol=1e-6)
    after = _snapshot(model)
    assert after[1] == before[1] and all(np.array_equal(a, b) for a, b in zip(after[0], before[0]))


def test_group_norm_takes_each_batch_norms_name_scale_and_offset_and_groups_its_channels():
    model = _with_statistics(_functional())
    grouped = kerasreg.set_batch_norm(model, norm="group")
    assert batch_norm_layers(grouped) == []
    bn, gn = model.get_layer("bn_skip"), grouped.get_layer("bn_skip")
    assert isinstance(gn, L.GroupNormalization) and gn.groups == 16 and gn.epsilon == 1e-5
    np.testing.assert_array_equal(gn.gamma.numpy(), bn.gamma.numpy())
    np.testing.assert_array_equal(gn.beta.numpy(), bn.beta.numpy())
    assert grouped.get_layer("bn").gamma is None  # scale=False stays so
    np.testing.assert_array_equal(grouped.get_layer("conv").get_weights()[0], model.get_layer("conv").get_weights()[0])
    assert kerasreg.set_batch_norm(model, norm="group", groups=4).get_layer("bn").groups == 4
    dense = kerasreg.set_batch_norm(_sequential(), norm="group").get_layer("bn1")
    assert dense.groups == 4  # 64 features of a Dense layer: groups of 16


def test_a_keras_applications_backbone_nested_in_a_model_is_rebuilt_with_group_norm():
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, include_top=False)
    inputs = keras.Input((32, 32, 3))
    features = L.GlobalAveragePooling2D()(base(inputs, training=False))
    model = _with_statistics(keras.Model(inputs, L.Dense(10, name="head")(L.BatchNormalization(name="head_bn")(
        features))))
    before = _snapshot(model)
    grouped = kerasreg.set_batch_norm(model, norm="group")
    backbone = grouped.get_layer(base.name)
    groups = [layer for layer in grouped._flatten_layers() if isinstance(layer, L.GroupNormalization)]
    assert len(groups) == len(before[1]) == 53 and batch_norm_layers(grouped) == []
    assert backbone.get_layer("bn_Conv1").groups == 16  # 16 channels of 16x16 positions: one group each
    np.testing.assert_array_equal(backbone.get_layer("bn_Conv1").gamma.numpy(), base.get_layer("bn_Conv1").gamma.numpy())
    np.testing.assert_array_equal(backbone.get_layer("Conv1").get_weights()[0], base.get_layer("Conv1").get_weights()[0])
    assert grouped.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0).shape == (2, 10)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before[0]))


@pytest.mark.parametrize("kwargs, message", [
    ({}, r"`momentum`. Expected a float in \[0, 1\) with norm=\"batch\".*Received: momentum=None"),
    ({"norm": "layer"}, r"`norm`. Expected one of batch, group. Received: norm='layer'"),
    ({"momentum": 1.0}, r"`momentum`. Expected a float in \[0, 1\). Received: momentum=1.0"),
    ({"norm": "group", "momentum": 0.9}, r"`momentum`. Expected None with norm=\"group\""),
    ({"norm": "group", "groups": 5}, r"`groups`. Expected a divisor .* \(bn(_skip)? has 16\). Received: groups=5"),
    ({"momentum": 0.9, "groups": 4}, r"`groups`. Expected None with norm=\"batch\""),
])
def test_bad_arguments_are_refused_naming_the_value_and_the_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kerasreg.set_batch_norm(_functional(), **kwargs)


def test_models_it_cannot_rebuild_are_refused_by_name():
    class Block(L.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.norm = L.BatchNormalization(name="hidden_bn")

        def call(self, x):
            return self.norm(x)

    custom = keras.Sequential([keras.Input((4,)), Block(name="block")])
    with pytest.raises(ValueError, match=r"Received: hidden_bn, inside a custom layer"):
        kerasreg.set_batch_norm(custom, momentum=0.9)
    with pytest.raises(ValueError, match=r"without any"):
        kerasreg.set_batch_norm(keras.Sequential([keras.Input((4,)), L.Dense(2)]), momentum=0.9)
    with pytest.raises(ValueError, match=r"`model`. Expected a keras.Model. Received: model=str"):
        kerasreg.set_batch_norm("model.keras", momentum=0.9)
