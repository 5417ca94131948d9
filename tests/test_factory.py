"""Tests of kerasreg.factory: build_model over the whole registry, errors, reload, describe."""

import inspect
import json
import re

import keras
import numpy as np
import pytest

import kerasreg
from helpers import (
    CONV_MODELS,
    api_cases,
    assert_placement_order,
    build_small,
    layer_token,
    model_case,
    run_python,
    small_inputs,
)

# The whole registry built at the lowest declared Keras, TensorFlow, JAX and NumPy too (.ci/run). Each case compiles
# a tiny model for a step or two: quick_compile (conftest.py) halves the file's time.
pytestmark = [pytest.mark.lowest, pytest.mark.usefixtures("quick_compile")]

MODELS = kerasreg.list_models()
PLACEMENTS = kerasreg.list_placements()
DEFAULT_PLACEMENT = inspect.signature(kerasreg.build_model).parameters["placement"].default
MATRIX = api_cases(MODELS, PLACEMENTS)
SEQUENTIAL_MODELS = [m for m in MODELS if model_case(m).sequential]
RESIDUAL_MODELS = [m for m in MODELS if not model_case(m).sequential]
DENSE_MODELS = [m for m in MODELS if m not in CONV_MODELS]


def _ids(case):
    return "-".join(map(str, case))


def _layers(model):
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


@pytest.mark.parametrize("name,placement,api", MATRIX, ids=[_ids(c) for c in MATRIX])
def test_every_model_placement_and_api_builds_runs_and_follows_the_placement(name, placement, api):
    p = kerasreg.get_placement(placement)
    model = build_small(name, placement=placement, api=api, seed=0)
    assert isinstance(model, keras.Sequential if api == "sequential" else keras.Model)
    x = small_inputs(name)

    inference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x, training=False)), inference)
    # (A training call updates BN moving statistics, so it comes after the inference checks.)
    training = keras.ops.convert_to_numpy(model(x, training=True))
    for y in (inference, training):
        assert y.shape == (4, 3)
        assert np.isfinite(y).all()
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    if p.uses_dropout or p.uses_norm:
        assert not np.allclose(training, inference), "training=True must switch dropout/BN to training mode"
    else:
        np.testing.assert_array_equal(training, inference)

    assert_placement_order(model, p, model_case(name).blocks)

    # One compiled training step (on any backend), with a metric: the weights stay finite and move. At the
    # default placement this is each zoo model's training step. A Sequential build is the functional one's layers
    # (test_sequential_and_functional_builds_are_the_same_network): its step is compiled at the default placement.
    if api == "sequential" and placement != DEFAULT_PLACEMENT:
        return
    before = [keras.ops.convert_to_numpy(w.value) for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.train_on_batch(x, np.arange(4) % 3)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    after = [keras.ops.convert_to_numpy(w.value) for w in model.trainable_weights]
    assert all(np.isfinite(a).all() for a in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))


@pytest.mark.parametrize("name", SEQUENTIAL_MODELS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_sequential_and_functional_builds_are_the_same_network(name, placement):
    seq = build_small(name, placement=placement, api="sequential", seed=7)
    fun = build_small(name, placement=placement, api="functional", seed=7)
    assert [layer.name for layer in _layers(seq)] == [layer.name for layer in _layers(fun)]
    assert [type(layer) for layer in _layers(seq)] == [type(layer) for layer in _layers(fun)]
    assert seq.count_params() == fun.count_params()
    for a, b in zip(seq.get_weights(), fun.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = small_inputs(name, seed=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(seq(x, training=False)),
        keras.ops.convert_to_numpy(fun(x, training=False)),
        rtol=1e-5, atol=1e-6,
    )


@pytest.mark.parametrize("name", RESIDUAL_MODELS)
def test_residual_model_with_sequential_api_raises(name):
    with pytest.raises(ValueError, match=rf"Model '{name}' has residual connections.*api='functional'"):
        build_small(name, api="sequential")


def test_same_seed_gives_same_weights_and_other_seed_does_not():
    a, b, c = (build_small("cnn2d", seed=s) for s in (3, 3, 4))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


# --- fresh-process .keras reload -------------------------------------------

def _diagonal():
    """(model, placement, api) cases in which every model x api and every placement appear.

    Reloading depends on the layer and model classes, not on the block
    order, so pairing the registries (instead of crossing them) keeps the
    fresh-process test fast while still covering every registry entry.
    """
    combos = sorted({(m, api) for m, _, api in MATRIX})
    n = max(len(combos), len(PLACEMENTS))
    return [(*combos[k % len(combos)], PLACEMENTS[k % len(PLACEMENTS)]) for k in range(n)]


_FRESH_PLACEMENT = "fresh_reload_norm_first"
RELOAD_CASES = {
    **{f"{m}-{p}-{api}": dict(name=m, placement=p, api=api) for m, api, p in _diagonal()},
    "cnn2d-spatial": dict(name="cnn2d", placement="bn_act_drop", dropout="spatial", api="sequential"),
    "cnn1d-spatial": dict(name="cnn1d", placement="dropout", dropout="spatial"),
    "mlp-gaussian-layer": dict(name="mlp", placement="ic", dropout="gaussian", norm="layer"),
    "mlp-alpha-group": dict(name="mlp", placement="drop_before_bn", dropout="alpha", norm="group", api="sequential"),
    "cnn2d-uout-group-torch": dict(name="cnn2d", placement="bn_act_drop", dropout="uout", norm="group", bn_preset="torch"),
    "mlp-torch": dict(name="mlp", placement="bn_before_act", bn_preset="torch"),
    "resnet_small-none-norm": dict(name="resnet_small", placement="bn_act_drop", norm="none"),
    "mlp-custom-placement": dict(name="mlp", placement=_FRESH_PLACEMENT, norm="group", api="sequential"),
    "resnet_small-custom-placement": dict(name="resnet_small", placement=_FRESH_PLACEMENT),
    "resnet_cifar-custom-placement": dict(name="resnet_cifar", placement=_FRESH_PLACEMENT),
}

_RELOAD_CHILD = """
import json, pathlib, sys
import numpy as np
import keras
import kerasreg  # with Keras imported first (isort's order), this registers kerasreg's Keras classes

directory = pathlib.Path(sys.argv[1])
inputs = np.load(directory / "inputs.npz")
outputs, configs = {}, {}
for case in inputs.files:
    model = keras.saving.load_model(directory / f"{case}.keras", safe_mode=True)
    outputs[case] = model.predict_on_batch(inputs[case])
    configs[case] = {
        "class": type(model).__name__,
        "layers": [layer.name for layer in model.layers],
        "kerasreg_config": getattr(model, "kerasreg_config", None),
    }
np.savez(directory / "outputs.npz", **outputs)
(directory / "configs.json").write_text(json.dumps(configs))
"""


def _randomize_weights(model, seed):
    """Move every weight, BN moving statistics included, off its initial value."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        value = v.numpy()
        if "moving_variance" in v.path:
            value = rng.uniform(0.5, 2.0, value.shape)
        else:
            value = value + rng.normal(0.0, 0.3, value.shape)
        v.assign(value.astype(value.dtype))


@pytest.fixture(scope="module")
def fresh_reload(tmp_path_factory):
    """Save every reload case here, load them all in ONE fresh process, return both sides."""
    if _FRESH_PLACEMENT not in kerasreg.list_placements():
        kerasreg.register_placement(kerasreg.Placement(
            _FRESH_PLACEMENT, "norm act weight drop", description="Pre-activation order, for the reload test.",
        ))
    directory = tmp_path_factory.mktemp("fresh_reload")
    inputs, expected = {}, {}
    for i, (case, kwargs) in enumerate(RELOAD_CASES.items()):
        kwargs = dict(kwargs)
        name = kwargs.pop("name")
        model = build_small(name, seed=i, **kwargs)
        _randomize_weights(model, seed=i)
        inputs[case] = small_inputs(name, batch=5, seed=i)
        model.save(directory / f"{case}.keras")
        expected[case] = {
            "output": keras.ops.convert_to_numpy(model.predict_on_batch(inputs[case])),
            "class": type(model).__name__,
            "layers": [layer.name for layer in model.layers],
            "kerasreg_config": json.loads(json.dumps(model.kerasreg_config)),
        }
    np.savez(directory / "inputs.npz", **inputs)
    run_python(_RELOAD_CHILD, directory, timeout=600)
    outputs = np.load(directory / "outputs.npz")
    configs = json.loads((directory / "configs.json").read_text())
    return expected, {case: {"output": outputs[case], **configs[case]} for case in configs}


@pytest.mark.parametrize("case", list(RELOAD_CASES))
def test_keras_file_reloads_exactly_in_a_fresh_process(fresh_reload, case):
    expected, reloaded = fresh_reload
    assert case in reloaded
    np.testing.assert_allclose(reloaded[case]["output"], expected[case]["output"], rtol=1e-5, atol=1e-6)
    assert reloaded[case]["class"] == expected[case]["class"]
    assert reloaded[case]["layers"] == expected[case]["layers"]
    assert reloaded[case]["kerasreg_config"] == expected[case]["kerasreg_config"]
    assert reloaded[case]["kerasreg_config"]["model"] == RELOAD_CASES[case]["name"]


# --- unknown names and bad arguments ---------------------------------------

@pytest.mark.parametrize(
    "argument,bad,kind,closest,valid",
    [
        ("name", "mpl", "model", "mlp", kerasreg.list_models),
        ("name", "resnet_smal", "model", "resnet_small", kerasreg.list_models),
        ("placement", "bn_befor_act", "placement", "bn_before_act", kerasreg.list_placements),
        ("placement", "dropuot", "placement", "dropout", kerasreg.list_placements),
        ("dropout", "gausian", "dropout kind", "gaussian", kerasreg.list_dropout_kinds),
        ("dropout", "standart", "dropout kind", "standard", kerasreg.list_dropout_kinds),
        ("norm", "batchnorm", "norm kind", "batch", kerasreg.list_norm_kinds),
        ("norm", "layers", "norm kind", "layer", kerasreg.list_norm_kinds),
    ],
)
def test_unknown_names_suggest_the_closest_and_list_all(argument, bad, kind, closest, valid):
    kwargs = {"name": "mlp", "input_shape": (10,), "num_classes": 3, argument: bad}
    with pytest.raises(ValueError, match=rf"Unknown {kind} '{bad}'\. Did you mean '{closest}'\?") as info:
        kerasreg.build_model(kwargs.pop("name"), **kwargs)
    assert f"Valid {kind} names: {', '.join(valid())}." in str(info.value)


def test_unknown_name_without_close_match_still_lists_all():
    with pytest.raises(ValueError, match=r"Unknown placement 'zzzz'\. Valid placement names: ") as info:
        build_small("mlp", placement="zzzz")
    assert "Did you mean" not in str(info.value)
    assert all(name in str(info.value) for name in kerasreg.list_placements())


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, "x", True, None, float("nan")], ids=repr)
def test_bad_dropout_rate_raises(rate):
    message = (
        "Invalid value received for argument `dropout_rate`. Expected a float in [0, 1). "
        f"Received: dropout_rate={rate!r}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        build_small("mlp", dropout_rate=rate)


@pytest.mark.parametrize("rate", [0, 0.0, 0.5, 0.999, np.float32(0.25), np.float64(0.3)], ids=repr)
def test_valid_dropout_rates_are_recorded_as_floats(rate):
    model = build_small("mlp", placement="dropout", dropout_rate=rate)
    assert type(model.kerasreg_config["dropout_rate"]) is float
    assert model.kerasreg_config["dropout_rate"] == pytest.approx(float(rate))


@pytest.mark.parametrize(
    "shape", [(), (0,), (-3,), (10.5,), (10, None), "abc", None, True, 0, [[10]]], ids=repr
)
def test_bad_input_shape_raises(shape):
    with pytest.raises(ValueError, match=re.escape(f"Expected a tuple of positive ints without the batch axis, "
                                                   f"e.g. (40,). Received: input_shape={shape!r}")):
        kerasreg.build_model("mlp", input_shape=shape, num_classes=3)


@pytest.mark.parametrize("num_classes", [1, 0, -2, 2.5, True, "10", None], ids=repr)
def test_bad_num_classes_raises(num_classes):
    with pytest.raises(ValueError, match=re.escape(f"Expected an int >= 2. Received: num_classes={num_classes!r}")):
        kerasreg.build_model("mlp", input_shape=(10,), num_classes=num_classes)


def test_int_and_numpy_shapes_and_classes_are_accepted():
    model = kerasreg.build_model("mlp", widths=(4,), input_shape=np.int64(10), num_classes=np.int64(3), seed=np.int64(1))
    assert model.input_shape == (None, 10)
    assert model.output_shape == (None, 3)
    config = model.kerasreg_config
    assert (config["input_shape"], config["num_classes"], config["seed"]) == ([10], 3, 1)
    json.dumps(config)


@pytest.mark.parametrize("seed", [1.5, "1", True, -1, 2**32], ids=repr)
def test_bad_seed_raises(seed):
    expected = f"Expected an int in [0, 2**32) or None. Received: seed={seed!r}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        build_small("mlp", seed=seed)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(api="subclassed"), r"argument `api`. Expected one of functional, sequential. Received: api='subclassed'"),
        (dict(bn_preset="pytorch"), r"argument `bn_preset`. Expected one of keras, torch. Received: bn_preset='pytorch'"),
        (dict(depth=3), r"Unknown option\(s\) depth for model 'mlp'. Valid options: widths."),
    ],
)
def test_other_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_small("mlp", **kwargs)


def test_none_options_fall_back_to_the_architecture_defaults():
    model = kerasreg.build_model("mlp", widths=None, input_shape=(40,), num_classes=10)
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [100, 100, 10]
    assert model.kerasreg_config["options"] == {"widths": [100, 100]}


def test_kerasreg_config_records_the_build():
    model = build_small("cnn2d", placement="head_dropout", dropout_rate=0.3, bn_preset="torch", seed=5)
    assert model.kerasreg_config == {
        "model": "cnn2d",
        "placement": "head_dropout",
        "block": ["weight", "norm", "act"],
        "dropout_scope": "head_only",
        "dropout": "standard",
        "dropout_rate": 0.3,
        "norm": "batch",
        "bn_preset": "torch",
        "api": "functional",
        "input_shape": [8, 8, 1],
        "num_classes": 3,
        "seed": 5,
        "options": {"filters": [4, 8], "kernel_size": 3},
    }


def test_unregistered_placement_object_is_accepted():
    p = kerasreg.Placement("unregistered_drop_first", "weight drop act", description="Not in the registry.")
    model = build_small("mlp", placement=p)
    assert_placement_order(model, p, 2)
    assert "unregistered_drop_first" not in kerasreg.list_placements()


# --- the regularisation axes: kinds, presets, rates ------------------------

@pytest.mark.parametrize("name", MODELS)
def test_bn_preset_torch_sets_momentum_and_epsilon_on_every_batchnorm(name):
    for preset, (momentum, epsilon) in {"torch": (0.9, 1e-5), "keras": (0.99, 1e-3)}.items():
        model = build_small(name, placement="bn_act_drop", bn_preset=preset)
        bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        assert len(bns) == model_case(name).blocks
        for bn in bns:
            assert bn.momentum == pytest.approx(momentum)
            assert bn.epsilon == pytest.approx(epsilon)


_DROPOUT_CLASSES = {
    "standard": keras.layers.Dropout,
    "gaussian": keras.layers.GaussianDropout,
    "alpha": keras.layers.AlphaDropout,
    "uout": kerasreg.Uout,
}
_DROPOUT_KIND_CASES = [
    (m, kind) for m in MODELS for kind in kerasreg.list_dropout_kinds()
    if kind in _DROPOUT_CLASSES or (kind == "spatial" and m in CONV_MODELS)
]


@pytest.mark.parametrize("name,kind", _DROPOUT_KIND_CASES)
def test_dropout_kind_swaps_the_layer_and_keeps_the_order(name, kind):
    model = build_small(name, placement="bn_act_drop", dropout=kind, dropout_rate=0.3, seed=1)
    drops = [layer for layer in model.layers if layer_token(layer) == "drop"]
    assert len(drops) == model_case(name).blocks
    for layer in drops:
        if kind == "spatial":
            rank = len(layer.input.shape)
            assert type(layer) is {3: keras.layers.SpatialDropout1D, 4: keras.layers.SpatialDropout2D}[rank]
        else:
            assert type(layer) is _DROPOUT_CLASSES[kind]
        assert layer.rate == pytest.approx(0.3)
    assert_placement_order(model, kerasreg.get_placement("bn_act_drop"), model_case(name).blocks)
    x = small_inputs(name)
    assert model(x, training=True).shape == (4, 3)


def test_every_dropout_kind_is_covered_here():
    assert set(kerasreg.list_dropout_kinds()) >= set(_DROPOUT_CLASSES) | {"spatial"}


@pytest.mark.parametrize(
    "kwargs,dims",
    [
        (dict(name="cnn1d"), 1),
        (dict(name="cnn2d"), 2),
        (dict(name="resnet_small"), 1),
        (dict(name="resnet_small", input_shape=(8, 8, 1)), 2),
        (dict(name="resnet_cifar"), 2),
        (dict(name="resnet_cifar", input_shape=(16,)), 1),
    ],
)
def test_spatial_dropout_matches_the_conv_dimension(kwargs, dims):
    cls = {1: keras.layers.SpatialDropout1D, 2: keras.layers.SpatialDropout2D}[dims]
    model = build_small(kwargs.pop("name"), placement="dropout", dropout="spatial", **kwargs)
    drops = [layer for layer in model.layers if layer_token(layer) == "drop"]
    assert drops and all(type(layer) is cls for layer in drops)


@pytest.mark.parametrize("name", DENSE_MODELS)
def test_spatial_dropout_on_dense_model_raises(name):
    with pytest.raises(ValueError, match=r"Dropout kind 'spatial' drops whole channels .* receives inputs of rank 2"):
        build_small(name, placement="dropout", dropout="spatial")


@pytest.mark.parametrize("name", CONV_MODELS)
def test_spatial_dropout_with_head_only_placement_raises(name):
    with pytest.raises(ValueError, match=r"Dropout kind 'spatial' .* layer 'head_drop' receives inputs of rank 2"):
        build_small(name, placement="head_dropout", dropout="spatial")


_NORM_CLASSES = {
    "batch": keras.layers.BatchNormalization,
    "layer": keras.layers.LayerNormalization,
    "group": keras.layers.GroupNormalization,
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("norm", [n for n in kerasreg.list_norm_kinds() if n in _NORM_CLASSES])
def test_norm_kind_swaps_the_layer_and_keeps_the_order(name, norm):
    model = build_small(name, placement="bn_act_drop", norm=norm)
    norms = [layer for layer in model.layers if layer_token(layer) == "norm"]
    assert len(norms) == model_case(name).blocks
    assert all(type(layer) is _NORM_CLASSES[norm] for layer in norms)
    assert_placement_order(model, kerasreg.get_placement("bn_act_drop"), model_case(name).blocks)
    x = small_inputs(name)
    assert np.isfinite(keras.ops.convert_to_numpy(model(x, training=True))).all()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("placement", [p for p in PLACEMENTS if kerasreg.get_placement(p).uses_norm])
def test_norm_none_removes_every_norm_layer(name, placement):
    model = build_small(name, placement=placement, norm="none")
    assert not [layer for layer in model.layers if layer_token(layer) == "norm"]
    assert_placement_order(model, kerasreg.get_placement(placement), model_case(name).blocks, norm=False)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("placement", [p for p in PLACEMENTS if kerasreg.get_placement(p).uses_dropout])
def test_dropout_rate_zero_removes_every_dropout_layer(name, placement):
    model = build_small(name, placement=placement, dropout_rate=0)
    assert not [layer for layer in model.layers if layer_token(layer) == "drop"]
    assert_placement_order(model, kerasreg.get_placement(placement), model_case(name).blocks, drop=False)


def test_uout_placement_implies_uout_and_refuses_another_kind():
    model = build_small("mlp", placement="uout")
    assert model.kerasreg_config["dropout"] == "uout"
    assert [type(layer) for layer in model.layers if layer_token(layer) == "drop"] == [kerasreg.Uout] * 2
    build_small("mlp", placement="uout", dropout="uout")
    with pytest.raises(ValueError, match=r"Placement 'uout' implies dropout='uout'\. Received: dropout='gaussian'"):
        build_small("mlp", placement="uout", dropout="gaussian")


# --- describe --------------------------------------------------------------

def test_describe_default_mlp():
    model = kerasreg.build_model("mlp", input_shape=(40,), num_classes=10)
    assert kerasreg.describe(model) == "Dense(100) > BatchNorm > ReLU > Dropout(0.2)  x2 > Dense(10)"


@pytest.mark.parametrize(
    "kwargs,text",
    [
        (dict(placement="head_dropout"), "Dense(8) > BatchNorm > ReLU  x2 > Dropout(0.2) > Dense(3)"),
        (dict(placement="drop_before_bn", dropout="gaussian", norm="layer", dropout_rate=0.1),
         "Dense(8) > ReLU > GaussianDropout(0.1) > LayerNorm  x2 > Dense(3)"),
        (dict(placement="uout", norm="group"), "Dense(8) > GroupNorm(8) > ReLU > Uout(0.2)  x2 > Dense(3)"),
        (dict(placement="none"), "Dense(8) > ReLU  x2 > Dense(3)"),
    ],
)
def test_describe_reads_the_layers(kwargs, text):
    assert kerasreg.describe(build_small("mlp", **kwargs)) == text


def test_describe_conv_and_residual_models():
    assert kerasreg.describe(build_small("cnn2d", placement="ic")) == (
        "Conv2D(4, 3x3) > ReLU > BatchNorm > Dropout(0.2) > Conv2D(8, 3x3) > ReLU > BatchNorm > Dropout(0.2)"
        " > Flatten > Dense(3)"
    )
    text = kerasreg.describe(build_small("resnet_small", placement="bn_before_act"))
    assert text.count("+ skip") == 1 and text.endswith("+ skip  x2 > GlobalAveragePooling1D > Dense(3)")
