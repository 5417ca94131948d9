"""Tests of kerasreg.zoo: the architecture registry and each architecture's shape handling."""

import inspect
import re

import keras
import numpy as np
import pytest

import kerasreg
from helpers import APIS, assert_placement_order, build_small, small_inputs
from kerasreg.models import zoo

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
BUILT_INS = ["cnn1d", "cnn2d", "mlp", "resnet_cifar", "resnet_small", "tutorial_net"]


def _layers(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def test_list_models_is_sorted_and_fnmatch_filtered():
    names = kerasreg.list_models()
    assert names == sorted(names)
    assert set(BUILT_INS) <= set(names)
    assert kerasreg.list_models("*") == names
    assert kerasreg.list_models("cnn*") == ["cnn1d", "cnn2d"]
    assert kerasreg.list_models("cnn?d") == ["cnn1d", "cnn2d"]
    assert kerasreg.list_models("*net*") == sorted(n for n in names if "net" in n)
    assert kerasreg.list_models("[mr]*") == sorted(n for n in names if n[0] in "mr")
    assert kerasreg.list_models("vit*") == []


@pytest.mark.parametrize("name", kerasreg.list_models())
def test_model_naming_conventions(name):
    fn = zoo.get_model_fn(name)
    assert SNAKE_CASE.match(name), f"model {name!r} is not snake_case"
    assert fn.__name__ == name
    assert (inspect.getdoc(fn) or "").strip(), f"model {name!r} has no docstring"
    params = list(inspect.signature(fn).parameters.values())
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), "options must be keyword-only"
    assert "input_shape" in inspect.signature(fn).parameters


def test_model_options():
    assert kerasreg.model_options("mlp") == {"widths": (100, 100)}
    assert kerasreg.model_options("cnn1d") == {"filters": (32, 64), "kernel_size": 5}
    assert kerasreg.model_options("cnn2d") == {"filters": (16, 32), "kernel_size": 3}
    assert kerasreg.model_options("resnet_small") == {"filters": 32, "stages": 2}
    assert kerasreg.model_options("resnet_cifar") == {"filters": (16, 32, 64), "blocks_per_stage": 3}
    assert kerasreg.model_options("tutorial_net") == {"widths": (5,)}


def test_unknown_model_suggests_the_closest_and_lists_all():
    with pytest.raises(ValueError, match=r"Unknown model 'cnn_2d'\. Did you mean 'cnn2d'\?") as info:
        kerasreg.model_options("cnn_2d")
    assert f"Valid model names: {', '.join(kerasreg.list_models())}." in str(info.value)


def test_registering_a_taken_model_name_raises_and_keeps_the_original():
    original = zoo.get_model_fn("mlp")
    with pytest.raises(ValueError, match=r"A model named 'mlp' is already registered\. Choose another name\."):
        @kerasreg.register_model
        def mlp(blocks, *, input_shape):
            """Impostor."""
            return []
    assert zoo.get_model_fn("mlp") is original


def test_registering_a_non_snake_case_model_name_raises():
    def WideNet(blocks, *, input_shape):  # noqa: N802
        """Bad name."""
        return []

    with pytest.raises(ValueError, match=r"Invalid model name 'WideNet'\. Expected snake_case"):
        kerasreg.register_model(WideNet)
    assert "WideNet" not in kerasreg.list_models()


def test_custom_model_works_with_every_placement_and_both_apis():
    @kerasreg.register_model
    def test_funnel(blocks, *, input_shape, top=12):
        """Two dense blocks that halve the width."""
        return blocks.flatten(input_shape) + blocks.dense("wide", top) + blocks.dense("narrow", top // 2)

    assert "test_funnel" in kerasreg.list_models()
    assert kerasreg.model_options("test_funnel") == {"top": 12}
    for placement in kerasreg.list_placements():
        for api in APIS:
            model = kerasreg.build_model(
                "test_funnel", placement=placement, api=api, input_shape=(3, 4), num_classes=2, top=8, seed=0,
            )
            assert_placement_order(model, kerasreg.get_placement(placement), 2)
            assert [layer.units for layer in _layers(model, keras.layers.Dense)] == [8, 4, 2]
            assert model.kerasreg_config["options"] == {"top": 8}
            assert model(np.ones((2, 3, 4), "float32"), training=True).shape == (2, 2)


@pytest.mark.parametrize(
    "name,shape,conv",
    [
        ("cnn1d", (16,), keras.layers.Conv1D),
        ("cnn1d", (16, 2), keras.layers.Conv1D),
        ("cnn2d", (8, 8), keras.layers.Conv2D),
        ("cnn2d", (8, 8, 3), keras.layers.Conv2D),
        ("resnet_small", (16,), keras.layers.Conv1D),
        ("resnet_small", (16, 2), keras.layers.Conv1D),
        ("resnet_small", (8, 8, 1), keras.layers.Conv2D),
        ("resnet_cifar", (16,), keras.layers.Conv1D),
        ("resnet_cifar", (16, 2), keras.layers.Conv1D),
        ("resnet_cifar", (8, 8, 1), keras.layers.Conv2D),
    ],
)
def test_conv_models_accept_inputs_with_or_without_channel_axis(name, shape, conv):
    model = build_small(name, input_shape=shape)
    convs = _layers(model, keras.layers.Conv1D) + _layers(model, keras.layers.Conv2D)
    assert convs and all(type(layer) is conv for layer in convs)
    has_channels = len(shape) == {keras.layers.Conv1D: 2, keras.layers.Conv2D: 3}[conv]
    assert bool(_layers(model, keras.layers.Reshape)) is not has_channels
    assert model(np.zeros((2, *shape), "float32")).shape == (2, 3)


@pytest.mark.parametrize(
    "name,shape,expected",
    [
        ("cnn1d", (4, 4, 4), r"model 'cnn1d'\. Expected \(length,\) or \(length, channels\)\. "
                             r"Received: input_shape=\(4, 4, 4\)"),
        ("cnn2d", (16,), r"model 'cnn2d'\. Expected \(height, width\) or \(height, width, channels\)\. "
                         r"Received: input_shape=\(16,\)"),
        ("cnn2d", (2, 4, 4, 1), r"model 'cnn2d'\. Expected \(height, width\)"),
        ("resnet_small", (2, 4, 4, 1), r"model 'resnet_small'\. Expected \(length,\), \(length, channels\) or "
                                       r"\(height, width, channels\)\. Received: input_shape=\(2, 4, 4, 1\)"),
        ("resnet_cifar", (2, 4, 4, 1), r"model 'resnet_cifar'\. Expected \(length,\), \(length, channels\) or "
                                       r"\(height, width, channels\)\. Received: input_shape=\(2, 4, 4, 1\)"),
    ],
)
def test_conv_models_reject_inputs_of_the_wrong_rank(name, shape, expected):
    with pytest.raises(ValueError, match=r"Invalid value received for argument `input_shape` of " + expected):
        build_small(name, input_shape=shape)


@pytest.mark.parametrize("name", ["mlp", "tutorial_net"])
def test_dense_models_flatten_any_input(name):
    model = build_small(name, input_shape=(4, 4, 1))
    assert model.get_layer("flatten")
    assert model(np.zeros((2, 4, 4, 1), "float32")).shape == (2, 3)
    assert not _layers(build_small(name), keras.layers.Flatten)


def test_mlp_widths():
    model = build_small("mlp", widths=(7, 6, 5))
    assert [layer.units for layer in _layers(model, keras.layers.Dense)] == [7, 6, 5, 3]


def test_cnn_filters_and_strides():
    model = build_small("cnn2d", filters=(4, 8, 16), input_shape=(16, 16, 1))
    convs = _layers(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [4, 8, 16]
    assert [tuple(c.strides) for c in convs] == [(2, 2)] * 3
    assert model.get_layer("flatten").output.shape == (None, 2 * 2 * 16)


def test_tutorial_net_normalises_the_five_features_of_its_linear_layer():
    """The tutorial's BatchNorm1d(10) after Linear(10, 5) cannot run; kerasreg normalises 5 features."""
    model = kerasreg.build_model("tutorial_net", placement="bn_before_act", input_shape=(10,), num_classes=2)
    (bn,) = _layers(model, keras.layers.BatchNormalization)
    assert tuple(bn.gamma.shape) == (5,)
    assert tuple(bn.moving_mean.shape) == (5,)
    dense = model.get_layer("block1_weight")
    assert tuple(dense.kernel.shape) == (10, 5)
    assert kerasreg.describe(model) == "Dense(5) > BatchNorm > ReLU > Dense(2)"
    dropout_net = kerasreg.build_model("tutorial_net", placement="dropout", input_shape=(10,), num_classes=2)
    assert kerasreg.describe(dropout_net) == "Dense(5) > ReLU > Dropout(0.2) > Dense(2)"


@pytest.mark.parametrize("stages", [1, 3])
def test_resnet_small_has_one_residual_addition_per_stage(stages):
    model = build_small("resnet_small", stages=stages, placement="bn_act_drop")
    adds = _layers(model, keras.layers.Add)
    assert [layer.name for layer in adds] == [f"res{i}_add" for i in range(1, stages + 1)]
    assert_placement_order(model, kerasreg.get_placement("bn_act_drop"), 1 + 2 * stages)
    assert model.get_layer("pool")
    assert model(small_inputs("resnet_small"), training=True).shape == (4, 3)


def test_resnet_small_residual_is_an_identity_skip():
    """With zeroed branch weights every residual block passes its input through unchanged."""
    model = build_small("resnet_small", placement="bn_before_act", dropout_rate=0)
    for layer in model.layers:
        if layer.name.startswith("res") and layer.name.endswith("b_weight"):
            layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
            layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    x = small_inputs("resnet_small")
    stem = keras.Model(model.input, model.get_layer("stem_act").output)(x)
    after = keras.Model(model.input, model.get_layer("res2_add").output)(x)
    # The b-branch ends in ReLU(BN(0)) = ReLU(beta) = 0 at initialisation.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(after), keras.ops.convert_to_numpy(stem), atol=1e-6)
