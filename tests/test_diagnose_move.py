"""`kerasreg.move_dropout` on plain Keras models: the fix applied, weights kept, and refusals that name the layer."""

import keras
import numpy as np
import pytest

import kerasreg

# Many tiny models, each compiled for a step or two (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

L = keras.layers


def _drop_before_bn(api):
    layers = [L.Dense(16, name="dense_1"), L.ReLU(name="relu_1"), L.Dropout(0.3, name="drop_1"),
              L.BatchNormalization(name="bn_1"), L.Dense(16, name="dense_2"), L.Dropout(0.4, name="drop_2"),
              L.Activation("relu", name="relu_2"), L.BatchNormalization(name="bn_2"),
              L.Dense(3, activation="softmax", name="head")]
    if api == "sequential":
        return keras.Sequential([keras.Input((8,)), *layers], name="net")
    x = inputs = keras.Input((8,))
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x, name="net")


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 8)).astype("float32"), rng.integers(0, 3, 64)


@pytest.mark.parametrize("api", ["sequential", "functional"])
def test_to_head_leaves_one_dropout_before_the_head_and_keeps_every_weight(api, xy):
    model = _drop_before_bn(api)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*xy, epochs=1, verbose=0)
    fixed = kerasreg.move_dropout(model, to="head")
    assert type(fixed) is type(model)
    structure = kerasreg.find_structure(fixed)
    assert structure.paths == () and structure.dropout_layers == ("head_dropout",)
    assert fixed.get_layer("head_dropout").rate == 0.4
    names = [layer.name for layer in fixed.layers]
    assert names.index("head_dropout") == names.index("head") - 1
    for name in ("dense_1", "bn_1", "dense_2", "bn_2", "head"):
        for a, b in zip(model.get_layer(name).get_weights(), fixed.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # Dropout is the identity at inference, so removing and moving it leaves the predictions as they were.
    np.testing.assert_allclose(fixed.predict(xy[0], verbose=0), model.predict(xy[0], verbose=0), atol=1e-6)
    assert model.get_layer("drop_1") is not None  # the original is untouched


@pytest.mark.parametrize("api", ["sequential", "functional"])
def test_to_uout_replaces_each_dropout_with_uout_of_the_same_rate(api):
    fixed = kerasreg.move_dropout(_drop_before_bn(api), to="uout")
    uouts = [layer for layer in fixed.layers if isinstance(layer, kerasreg.Uout)]
    assert [(u.name, u.rate) for u in uouts] == [("drop_1_uout", 0.3), ("drop_2_uout", 0.4)]
    assert not any(type(layer) is L.Dropout for layer in fixed.layers)


def test_the_result_trains_with_fit_and_with_kerasreg_train():
    model = kerasreg.build_model("mlp", placement="drop_before_bn", input_shape=(40,), num_classes=10,
                                 widths=(16, 16), seed=0)
    fixed = kerasreg.move_dropout(model)
    assert kerasreg.find_structure(fixed).placement == "head_dropout"
    result = kerasreg.train(fixed, kerasreg.load_dataset("mnist1d"), epochs=1, verbose=0)
    assert 0 <= result.val_metrics["accuracy"] <= 1
    again = kerasreg.move_dropout(model, to="uout")
    again.compile("adam", "sparse_categorical_crossentropy")
    x, y = kerasreg.load_dataset("mnist1d").as_numpy("val")
    history = again.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_a_branching_dropout_is_refused_by_name():
    x = keras.Input((8,))
    h = L.Dropout(0.2, name="branch_drop")(L.Dense(8)(x))
    out = L.Dense(3)(L.Add()([L.BatchNormalization()(h), L.Dense(8)(h)]))
    with pytest.raises(ValueError, match="cannot rewrite layer 'branch_drop': its output feeds several layers"):
        kerasreg.move_dropout(keras.Model(x, out))


def test_a_dropout_inside_a_nested_model_is_refused_by_name():
    inner = keras.Sequential([keras.Input((8,)), L.Dense(8), L.Dropout(0.2, name="inner_drop"),
                              L.BatchNormalization()], name="block")
    x = keras.Input((8,))
    with pytest.raises(ValueError, match="'block/inner_drop': it sits inside the nested model 'block'"):
        kerasreg.move_dropout(keras.Model(x, L.Dense(3)(inner(x))))


def test_the_head_is_found_through_the_call_that_made_the_output_when_a_layer_is_shared():
    x = keras.Input((8,))
    act = L.ReLU(name="act")  # called after the first Dense and again after the head
    h = L.BatchNormalization(name="bn")(L.Dropout(0.3, name="drop")(act(L.Dense(8, name="dense_1")(x))))
    fixed = kerasreg.move_dropout(keras.Model(x, act(L.Dense(3, name="head")(h))), to="head")
    names = [layer.name for layer in fixed.layers]
    assert names.index("head_dropout") == names.index("head") - 1


def test_a_bad_target_is_refused():
    with pytest.raises(ValueError, match="Invalid value received for argument `to`.*Received: to='tail'"):
        kerasreg.move_dropout(_drop_before_bn("sequential"), to="tail")


@pytest.mark.parametrize("model, received", [("model", "model='model' of type str"),
                                             (None, "model=None of type NoneType")])
def test_something_that_is_not_a_model_is_refused_naming_the_argument(model, received):
    for call in (kerasreg.move_dropout, kerasreg.find_structure):
        with pytest.raises(ValueError, match=rf"argument `model`. Expected a keras.Model .* Received: {received}"):
            call(model)


def test_after_the_uout_fix_the_verdict_no_longer_asks_to_move_dropout():
    data = kerasreg.load_dataset("mnist1d")
    model = kerasreg.build_model("mlp", placement="drop_before_bn", input_shape=(40,), num_classes=10,
                                 widths=(16, 16), seed=0)
    before = kerasreg.diagnose(model, data)
    assert any("move dropout after the last BatchNorm" in s for s in before.verdict)
    after = kerasreg.diagnose(kerasreg.move_dropout(model, to="uout"), data)
    assert {p.kind for p in after.structure.paths} == {"Uout"}
    assert any("variance-stable by design" in s for s in after.verdict)
    assert not any("move dropout after" in s for s in after.verdict)
