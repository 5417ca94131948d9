"""Tests of kerasreg.layers: rate checks, dropout and norm kinds, and the Uout layer."""

import re

import keras
import numpy as np
import pytest

import kerasreg
from helpers import build_small, small_inputs
from kerasreg import _checks
from kerasreg.models import kinds
from kerasreg.models.kinds import Uout

# Many tiny models, each compiled for a step or two (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")


def _np(x):
    return keras.ops.convert_to_numpy(x)


# --- check_rate ------------------------------------------------------------

@pytest.mark.parametrize("rate", [0, 0.0, 0.2, 0.999, np.float32(0.5), np.float64(0.1)], ids=repr)
def test_check_rate_accepts_numbers_in_0_1(rate):
    assert _checks.rate(rate) == pytest.approx(float(rate))
    assert type(_checks.rate(rate)) is float


@pytest.mark.parametrize("rate", [1.0, 1, -0.1, 1.5, "x", "0.2", True, False, None, float("nan"), float("inf")],
                         ids=repr)
def test_check_rate_rejects_bad_rates_in_keras_wording(rate):
    message = f"Invalid value received for argument `rate`. Expected a float in [0, 1). Received: rate={rate!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        _checks.rate(rate)


# --- Uout ------------------------------------------------------------------

def test_uout_is_the_identity_at_inference():
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    layer = Uout(0.5, seed=1)
    np.testing.assert_array_equal(_np(layer(x)), x)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_uout_training_noise_is_bounded_with_mean_one(rate):
    x = np.ones((200, 500), "float32")
    factors = _np(Uout(rate, seed=3)(x, training=True))
    assert factors.dtype == np.float32
    assert factors.min() >= 1 - rate - 1e-6 and factors.max() <= 1 + rate + 1e-6
    # 100k draws of U(1 - rate, 1 + rate): mean 1, variance rate**2 / 3.
    assert factors.mean() == pytest.approx(1.0, abs=0.01)
    assert factors.var() == pytest.approx(rate**2 / 3, rel=0.05)
    assert len(np.unique(factors)) > 1000, "each activation needs its own noise factor"


def test_uout_training_scales_each_input():
    x = np.random.default_rng(1).normal(size=(64, 32)).astype("float32")
    y = _np(Uout(0.3, seed=0)(x, training=True))
    ratio = y / x
    assert ratio.min() >= 0.7 - 1e-5 and ratio.max() <= 1.3 + 1e-5
    assert not np.allclose(y, x)


def test_uout_rate_zero_is_the_identity_in_training():
    x = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    np.testing.assert_array_equal(_np(Uout(0.0)(x, training=True)), x)


def test_uout_same_seed_same_noise():
    x = np.ones((16, 16), "float32")
    a = _np(Uout(0.4, seed=11)(x, training=True))
    b = _np(Uout(0.4, seed=11)(x, training=True))
    c = _np(Uout(0.4, seed=12)(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, "x", True], ids=repr)
def test_uout_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match=re.escape(f"Expected a float in [0, 1). Received: rate={rate!r}")):
        Uout(rate)


def test_uout_config_round_trip():
    layer = Uout(0.25, seed=5, name="noise")
    config = layer.get_config()
    assert config["rate"] == 0.25 and config["seed"] == 5 and config["name"] == "noise"
    clone = Uout.from_config(config)
    assert clone.get_config() == config

    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "kerasreg>Uout"
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(restored) is Uout
    assert restored.get_config() == config


def test_uout_keeps_shape_and_mask_support():
    layer = Uout(0.1)
    assert layer.compute_output_shape((None, 7, 3)) == (None, 7, 3)
    assert layer.supports_masking


# --- dropout kinds ---------------------------------------------------------

@pytest.mark.parametrize(
    "kind,rank,cls",
    [
        ("standard", 2, keras.layers.Dropout),
        ("standard", 4, keras.layers.Dropout),
        ("spatial", 3, keras.layers.SpatialDropout1D),
        ("spatial", 4, keras.layers.SpatialDropout2D),
        ("gaussian", 2, keras.layers.GaussianDropout),
        ("alpha", 2, keras.layers.AlphaDropout),
        ("uout", 2, Uout),
        ("uout", 3, Uout),
    ],
)
def test_dropout_kind_factories_and_config_round_trip(kind, rank, cls):
    layer = kinds.get_dropout_kind(kind)(0.3, seed=4, rank=rank, name="d")
    assert type(layer) is cls
    assert layer.name == "d"
    assert layer.rate == pytest.approx(0.3)
    assert layer.seed == 4
    config = layer.get_config()
    assert cls.from_config(config).get_config() == config


@pytest.mark.parametrize("rank", [2, 5])
def test_spatial_dropout_kind_rejects_other_ranks(rank):
    with pytest.raises(ValueError, match=rf"Dropout kind 'spatial' .* layer 'block1_drop' receives inputs of rank {rank}"):
        kinds.get_dropout_kind("spatial")(0.2, seed=None, rank=rank, name="block1_drop")


def test_dropout_kinds_pass_the_seed_through():
    model = build_small("cnn2d", placement="dropout", dropout="spatial", seed=10)
    seeds = [layer.seed for layer in model.layers if isinstance(layer, keras.layers.SpatialDropout2D)]
    assert len(seeds) == 2 and None not in seeds and len(set(seeds)) == 2


# --- norm kinds ------------------------------------------------------------

@pytest.mark.parametrize(
    "kind,channels,cls",
    [
        ("batch", 8, keras.layers.BatchNormalization),
        ("layer", 8, keras.layers.LayerNormalization),
        ("group", 8, keras.layers.GroupNormalization),
        ("group", 12, keras.layers.GroupNormalization),
        ("group", 5, keras.layers.GroupNormalization),
    ],
)
def test_norm_kind_factories_and_config_round_trip(kind, channels, cls):
    layer = kinds.get_norm_kind(kind)(channels, bn_preset="keras", name="n")
    assert type(layer) is cls
    assert layer.name == "n"
    config = layer.get_config()
    assert cls.from_config(config).get_config() == config
    x = np.random.default_rng(0).normal(size=(4, channels)).astype("float32")
    assert layer(x, training=True).shape == (4, channels)


@pytest.mark.parametrize("channels,groups", [(8, 8), (12, 4), (5, 1), (6, 2), (32, 8)])
def test_group_norm_uses_a_group_count_that_divides_the_channels(channels, groups):
    assert kinds.get_norm_kind("group")(channels, bn_preset="keras", name="g").groups == groups


def test_norm_kind_none_adds_no_layer():
    assert kinds.get_norm_kind("none")(8, bn_preset="keras", name="n") is None


def test_bn_presets():
    assert kinds.get_bn_preset("torch") == {"momentum": 0.9, "epsilon": 1e-5}
    assert kinds.get_bn_preset("keras") == {}
    torch_bn = kinds.get_norm_kind("batch")(8, bn_preset="torch", name="n")
    assert (torch_bn.momentum, torch_bn.epsilon) == (0.9, 1e-5)
    keras_bn = kinds.get_norm_kind("batch")(8, bn_preset="keras", name="n")
    default = keras.layers.BatchNormalization()
    assert (keras_bn.momentum, keras_bn.epsilon) == (default.momentum, default.epsilon)
    kinds.get_bn_preset("torch")["momentum"] = 0.5
    assert kinds.get_bn_preset("torch")["momentum"] == 0.9, "callers must get a copy"
    with pytest.raises(ValueError, match=r"`bn_preset`\. Expected one of keras, torch\. Received: bn_preset='tf'"):
        kinds.get_bn_preset("tf")


# --- registries of kinds ---------------------------------------------------

@pytest.mark.parametrize(
    "getter,lister,kind,bad,closest",
    [
        (kinds.get_dropout_kind, kerasreg.list_dropout_kinds, "dropout kind", "gausian", "gaussian"),
        (kinds.get_dropout_kind, kerasreg.list_dropout_kinds, "dropout kind", "spacial", "spatial"),
        (kinds.get_norm_kind, kerasreg.list_norm_kinds, "norm kind", "batchnorm", "batch"),
        (kinds.get_norm_kind, kerasreg.list_norm_kinds, "norm kind", "groups", "group"),
    ],
)
def test_unknown_kind_suggests_the_closest_and_lists_all(getter, lister, kind, bad, closest):
    with pytest.raises(ValueError, match=rf"Unknown {kind} '{bad}'\. Did you mean '{closest}'\?") as info:
        getter(bad)
    assert f"Valid {kind} names: {', '.join(lister())}." in str(info.value)


def test_kind_lists_are_sorted_and_fnmatch_filtered():
    dropouts, norms = kerasreg.list_dropout_kinds(), kerasreg.list_norm_kinds()
    assert dropouts == sorted(dropouts) and norms == sorted(norms)
    assert {"standard", "spatial", "gaussian", "alpha", "uout"} <= set(dropouts)
    assert {"batch", "layer", "group", "none"} <= set(norms)
    assert kerasreg.list_dropout_kinds("s*") == ["spatial", "standard"]
    assert kerasreg.list_norm_kinds("*a*") == sorted(n for n in norms if "a" in n)
    assert kerasreg.list_norm_kinds("zz*") == []


@pytest.mark.parametrize(
    "name,getter",
    [(n, kinds.get_dropout_kind) for n in kerasreg.list_dropout_kinds()]
    + [(n, kinds.get_norm_kind) for n in kerasreg.list_norm_kinds()],
)
def test_kind_naming_conventions(name, getter):
    assert SNAKE_CASE.match(name)
    fn = getter(name)
    assert fn.__name__ == name
    assert (fn.__doc__ or "").strip(), f"kind {name!r} has no docstring"


def test_registering_a_taken_kind_name_raises():
    with pytest.raises(ValueError, match=r"A dropout kind named 'gaussian' is already registered"):
        @kerasreg.register_dropout_kind
        def gaussian(rate, *, seed, rank, name):
            """Impostor."""

    with pytest.raises(ValueError, match=r"A norm kind named 'batch' is already registered"):
        @kerasreg.register_norm_kind
        def batch(channels, *, bn_preset, name):
            """Impostor."""

    assert kinds.get_dropout_kind("gaussian") is kinds.gaussian
    assert kinds.get_norm_kind("batch") is kinds.batch


def test_custom_dropout_and_norm_kinds_work_in_build_model():
    @kerasreg.register_dropout_kind
    def test_gaussian_noise(rate, *, seed, rank, name):
        """Additive Gaussian noise with standard deviation `rate`."""
        return keras.layers.GaussianNoise(rate, seed=seed, name=name)

    @kerasreg.register_norm_kind
    def test_unit_norm(channels, *, bn_preset, name):
        """Scales each sample to unit L2 norm."""
        return keras.layers.UnitNormalization(name=name)

    assert "test_gaussian_noise" in kerasreg.list_dropout_kinds()
    assert "test_unit_norm" in kerasreg.list_norm_kinds()
    model = build_small("cnn1d", placement="ic", dropout="test_gaussian_noise", norm="test_unit_norm", seed=0)
    assert [type(model.get_layer(f"block{i}_drop")) for i in (1, 2)] == [keras.layers.GaussianNoise] * 2
    assert [type(model.get_layer(f"block{i}_norm")) for i in (1, 2)] == [keras.layers.UnitNormalization] * 2
    assert model.kerasreg_config["dropout"] == "test_gaussian_noise"
    assert model(small_inputs("cnn1d"), training=True).shape == (4, 3)
