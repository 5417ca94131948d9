"""The structure finder on models kerasreg did not build: plain Keras, keras.applications, nested models."""

import keras
import pytest

import kerasreg
from kerasreg.models.placements import get_placement, list_placements

# Many tiny models, each compiled for a step or two (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

L = keras.layers

_TOKEN_LAYERS = {
    "mlp": {"weight": lambda i: L.Dense(16, name=f"dense_{i}"), "norm": lambda i: L.BatchNormalization(name=f"bn_{i}"),
            "act": lambda i: L.ReLU(name=f"relu_{i}"), "drop": lambda i: L.Dropout(0.3, name=f"drop_{i}")},
    "cnn": {"weight": lambda i: L.Conv2D(4, 3, padding="same", name=f"conv_{i}"),
            "norm": lambda i: L.BatchNormalization(name=f"bn_{i}"), "act": lambda i: L.Activation("relu", name=f"relu_{i}"),
            "drop": lambda i: L.SpatialDropout2D(0.3, name=f"drop_{i}")},
}
_INPUTS = {"mlp": (8,), "cnn": (8, 8, 1)}


def plain_keras(kind, block, api, blocks=2):
    """A plain Keras classifier whose hidden blocks follow `block`, built without kerasreg."""
    layers = [_TOKEN_LAYERS[kind][token](f"{b}{t}") for b in range(blocks) for t, token in enumerate(block)]
    head = [L.Flatten(name="flatten")] if kind == "cnn" else []
    head.append(L.Dense(3, activation="softmax", name="head"))
    if api == "sequential":
        return keras.Sequential([keras.Input(_INPUTS[kind]), *layers, *head])
    x = inputs = keras.Input(_INPUTS[kind])
    for layer in layers + head:
        x = layer(x)
    return keras.Model(inputs, x)


def _every_block_placements():
    return [name for name in list_placements() if get_placement(name).dropout_scope == "every_block"
            and "drop" in get_placement(name).block and "norm" in get_placement(name).block]


@pytest.mark.parametrize("api", ["sequential", "functional"])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("placement", _every_block_placements())
def test_a_plain_keras_model_is_flagged_only_when_dropout_precedes_bn_inside_a_block(placement, kind, api):
    block = get_placement(placement).block
    structure = kerasreg.find_structure(plain_keras(kind, block, api))
    names = {"weight": "dense" if kind == "mlp" else "conv", "norm": "bn", "act": "relu", "drop": "drop"}
    start, end = block.index("drop"), block.index("norm")
    expected = [" -> ".join(f"{names[block[t]]}_{b}{t}" for t in range(start, end + 1)) for b in range(2)]
    # Through a weight layer (`drop_before_weight`) dropout does not reach the BN: the weights mix its noise.
    flagged = start < end and "weight" not in block[start:end]
    assert [path.text() for path in structure.paths] == (expected if flagged else [])
    assert structure.batch_norm_layers == ("bn_0" + str(end), "bn_1" + str(end))


@pytest.mark.parametrize("api", ["sequential", "functional"])
def test_dropout_then_activation_then_bn_is_flagged_and_dropout_then_dense_then_bn_is_not(api):
    flagged = kerasreg.find_structure(plain_keras("mlp", ("weight", "drop", "act", "norm"), api, blocks=1))
    assert [p.text() for p in flagged.paths] == ["drop_01 -> relu_02 -> bn_03"]
    assert flagged.paths[0].placement is None  # no kerasreg placement has this block
    through_dense = kerasreg.find_structure(plain_keras("mlp", ("act", "drop", "weight", "norm"), api, blocks=1))
    assert through_dense.paths == ()
    assert through_dense.dropout_layers == ("drop_01",)


@pytest.mark.parametrize("placement", [name for name in list_placements()])
def test_the_placement_of_a_kerasreg_model_is_recognised(placement):
    model = kerasreg.build_model("mlp", placement=placement, input_shape=(8,), num_classes=3, widths=(8, 8, 8))
    structure = kerasreg.find_structure(model)
    assert structure.placement == placement
    assert all(path.placement == "drop_before_bn" for path in structure.paths)
    assert len(structure.paths) == (3 if placement == "drop_before_bn" else 0)


def test_paths_run_through_add_and_into_a_nested_model():
    inner = keras.Sequential([keras.Input((16,)), L.BatchNormalization(name="inner_bn"), L.Dense(4)], name="inner")
    x = keras.Input((8,))
    h = L.Dense(16, name="dense")(x)
    noisy = L.GaussianNoise(0.1, name="noise")(h)
    h = L.Add(name="add")([noisy, L.Activation("relu", name="relu")(h)])
    h = L.Reshape((4, 4), name="reshape")(h)
    h = L.Flatten(name="flatten")(h)
    structure = kerasreg.find_structure(keras.Model(x, inner(h)))
    assert [p.text() for p in structure.paths] == ["noise -> add -> reshape -> flatten -> inner/inner_bn"]
    assert structure.batch_norm_layers == ("inner/inner_bn",)


def test_a_nested_model_can_hold_the_dropout_and_concatenate_joins_paths():
    inner = keras.Sequential([keras.Input((8,)), L.Dense(8, name="d"), L.AlphaDropout(0.1, name="alpha")],
                             name="features")
    x = keras.Input((8,))
    a = inner(x)
    b = kerasreg.Uout(0.1, name="uout")(L.Dense(8, name="d2")(x))
    h = L.Concatenate(name="cat")([a, b])
    out = L.Dense(3, name="head")(L.BatchNormalization(name="bn")(h))
    structure = kerasreg.find_structure(keras.Model(x, out))
    assert sorted(p.text() for p in structure.paths) == ["features/alpha -> cat -> bn", "uout -> cat -> bn"]
    assert structure.feeding_batch_norm == ("features/alpha", "uout")


@pytest.mark.slow
@pytest.mark.parametrize("application, bn_count", [("MobileNetV2", 52), ("ResNet50", 53)])
def test_keras_applications_are_read_without_paths(application, bn_count):
    model = getattr(keras.applications, application)(input_shape=(32, 32, 3), weights=None, classes=10)
    structure = kerasreg.find_structure(model)
    assert len(structure.batch_norm_layers) == bn_count
    assert structure.paths == ()
    assert structure.placement == "bn_before_act"


@pytest.mark.slow
def test_dropout_feeding_a_nested_application_is_flagged_only_when_bn_comes_first():
    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, include_top=False)
    x = keras.Input((32, 32, 3))
    h = L.SpatialDropout2D(0.2, name="input_drop")(x)
    # MobileNetV2 opens with a convolution: the dropout meets a weight layer first.
    assert kerasreg.find_structure(keras.Model(x, backbone(h))).paths == ()
    head = keras.Sequential([keras.Input(backbone.output.shape[1:]), L.BatchNormalization(name="head_bn"),
                             L.GlobalAveragePooling2D(), L.Dense(10)], name="head")
    h = L.Dropout(0.3, name="feature_drop")(backbone(x))
    structure = kerasreg.find_structure(keras.Model(x, head(h)))
    assert [p.text() for p in structure.paths] == ["feature_drop -> head/head_bn"]
    assert len(structure.batch_norm_layers) == 53


def test_a_subclassed_model_is_refused_with_its_name():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="Sequential or functional model"):
        kerasreg.find_structure(Net(name="mine"))
