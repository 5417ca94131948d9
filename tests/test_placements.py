"""Tests of kerasreg.placements: the Placement type, the registry and custom placements."""

import re

import keras
import numpy as np
import pytest

import kerasreg
from helpers import APIS, assert_placement_order, build_small, model_case, small_inputs
from kerasreg.models.graph import consumers, graph_of, nodes_in_order, producer
from kerasreg.models.placements import Placement

# Many tiny models, each compiled for a step or two (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")

# The docs' placement table: name -> (block, dropout scope, implied dropout kind).
BUILT_INS = {
    "none": ("weight act", "every_block", None),
    "dropout": ("weight act drop", "every_block", None),
    "bn_before_act": ("weight norm act", "every_block", None),
    "bn_after_act": ("weight act norm", "every_block", None),
    "bn_act_drop": ("weight norm act drop", "every_block", None),
    "drop_before_bn": ("weight act drop norm", "every_block", None),
    "ic": ("weight act norm drop", "every_block", None),
    "head_dropout": ("weight norm act", "head_only", None),
    "uout": ("weight norm act drop", "every_block", "uout"),
    "drop_before_weight": ("drop weight norm act", "every_block", None),
}


@pytest.mark.parametrize("name", list(BUILT_INS))
def test_built_in_placements_match_the_design(name):
    block, scope, kind = BUILT_INS[name]
    p = kerasreg.get_placement(name)
    assert p.name == name
    assert p.block == tuple(block.split())
    assert p.dropout_scope == scope
    assert p.dropout_kind == kind


@pytest.mark.parametrize("name", kerasreg.list_placements())
def test_placement_naming_conventions(name):
    p = kerasreg.get_placement(name)
    assert SNAKE_CASE.match(name), f"placement {name!r} is not snake_case"
    assert p.name == name
    assert p.description.strip(), f"placement {name!r} has no description"
    assert p.block.count("weight") == 1


def test_list_placements_is_sorted_and_fnmatch_filtered():
    names = kerasreg.list_placements()
    assert names == sorted(names)
    assert set(BUILT_INS) <= set(names)
    assert kerasreg.list_placements("*") == names
    assert kerasreg.list_placements("bn_*") == ["bn_act_drop", "bn_after_act", "bn_before_act"]
    assert kerasreg.list_placements("*drop*") == sorted(n for n in names if "drop" in n)
    assert kerasreg.list_placements("?c") == ["ic"]
    assert kerasreg.list_placements("no_such_*") == []


def test_get_placement_passes_a_placement_through():
    p = Placement("passthrough_probe", "weight act", description="Not registered.")
    assert kerasreg.get_placement(p) is p


@pytest.mark.parametrize("bad,closest", [("bn_befor_act", "bn_before_act"), ("Dropout", "dropout"), ("uot", "uout")])
def test_unknown_placement_suggests_the_closest_and_lists_all(bad, closest):
    with pytest.raises(ValueError, match=rf"Unknown placement '{bad}'\. Did you mean '{closest}'\?") as info:
        kerasreg.get_placement(bad)
    assert f"Valid placement names: {', '.join(kerasreg.list_placements())}." in str(info.value)


@pytest.mark.parametrize("bad", [None, 3, ["dropout"]], ids=repr)
def test_non_string_placement_raises_value_error(bad):
    with pytest.raises(ValueError, match="Unknown placement"):
        kerasreg.get_placement(bad)


def test_block_may_be_a_string_or_a_sequence():
    assert Placement("a_probe", "weight norm act", description="x").block == ("weight", "norm", "act")
    assert Placement("b_probe", ["weight", "act"], description="x").block == ("weight", "act")


@pytest.mark.parametrize(
    "block",
    ["norm act", "weight weight act", "weight act act", "weight relu", "weight Norm", ""],
)
def test_invalid_block_raises(block):
    with pytest.raises(ValueError, match=r"Invalid value received for argument `block` of placement 'bad_probe'"):
        Placement("bad_probe", block, description="x")


def test_invalid_scope_raises():
    with pytest.raises(ValueError, match=r"`dropout_scope`\. Expected one of every_block, head_only\. "
                                         r"Received: dropout_scope='head'"):
        Placement("bad_probe", "weight act", dropout_scope="head", description="x")


def test_head_only_placement_with_drop_in_block_raises():
    with pytest.raises(ValueError, match=r"dropout_scope='head_only', so its block must not contain `drop`"):
        Placement("bad_probe", "weight act drop", dropout_scope="head_only", description="x")


def test_uses_dropout_and_uses_norm():
    get = kerasreg.get_placement
    assert (get("none").uses_dropout, get("none").uses_norm) == (False, False)
    assert (get("dropout").uses_dropout, get("dropout").uses_norm) == (True, False)
    assert (get("bn_before_act").uses_dropout, get("bn_before_act").uses_norm) == (False, True)
    assert (get("head_dropout").uses_dropout, get("head_dropout").uses_norm) == (True, True)


def test_block_text():
    assert kerasreg.get_placement("bn_act_drop").block_text() == "weight > norm > act > drop"
    assert kerasreg.get_placement("head_dropout").block_text() == (
        "weight > norm > act (drop only before the head)"
    )


def test_placements_are_immutable():
    with pytest.raises(AttributeError):
        kerasreg.get_placement("ic").block = ("weight",)


# --- registration ----------------------------------------------------------

def test_registering_a_taken_name_raises_and_keeps_the_original():
    original = kerasreg.get_placement("dropout")
    with pytest.raises(ValueError, match=r"A placement named 'dropout' is already registered"):
        kerasreg.register_placement(Placement("dropout", "weight drop act", description="Impostor."))

    with pytest.raises(ValueError, match=r"A placement named 'ic' is already registered"):
        @kerasreg.register_placement
        def ic():
            """Impostor."""
            return ("weight", "act")

    assert kerasreg.get_placement("dropout") is original
    assert kerasreg.get_placement("ic").block == ("weight", "act", "norm", "drop")


@pytest.mark.parametrize("name", ["CamelCase", "with-dash", "1st", "", "trailing space ", "trailing_newline\n"])
def test_registering_a_non_snake_case_name_raises(name):
    with pytest.raises(ValueError, match=r"Invalid placement name .* Expected snake_case"):
        kerasreg.register_placement(Placement(name, "weight act", description="x"))
    assert name not in kerasreg.list_placements()


def test_register_placement_rejects_other_objects():
    with pytest.raises(TypeError, match="register_placement expects a Placement or a function"):
        kerasreg.register_placement("weight act")


def _check_custom_placement_end_to_end(name, tmp_path):
    """Every model and API builds with the placement; mlp also fits and reloads in both APIs."""
    p = kerasreg.get_placement(name)
    for model_name in kerasreg.list_models():
        for api in APIS:
            if api == "sequential" and not model_case(model_name).sequential:
                continue
            model = build_small(model_name, placement=name, api=api, seed=0)
            assert_placement_order(model, p, model_case(model_name).blocks)
            assert model(small_inputs(model_name), training=True).shape == (4, 3)
            if model_name != "mlp":
                continue
            x, y = small_inputs(model_name, batch=8), np.arange(8) % 3
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
            assert np.isfinite(history.history["loss"][0])
            path = tmp_path / f"{model_name}-{api}.keras"
            model.save(path)
            reloaded = keras.saving.load_model(path)
            assert reloaded.kerasreg_config["placement"] == name
            np.testing.assert_allclose(
                reloaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5, atol=1e-6
            )


def test_custom_placement_decorator_form_works_end_to_end(tmp_path):
    @kerasreg.register_placement
    def test_pre_activation():
        """Pre-activation order: norm and act before the weights, then dropout."""
        return ("norm", "act", "weight", "drop")

    p = kerasreg.get_placement("test_pre_activation")
    assert p.description == "Pre-activation order: norm and act before the weights, then dropout."
    assert (p.block, p.dropout_scope) == (("norm", "act", "weight", "drop"), "every_block")
    assert "test_pre_activation" in kerasreg.list_placements()
    _check_custom_placement_end_to_end("test_pre_activation", tmp_path)


def test_custom_placement_plain_call_form_works_end_to_end(tmp_path):
    kerasreg.register_placement(Placement(
        "test_drop_then_norm", "weight drop norm act",
        description="Dropout straight after the weights, then BN and ReLU.",
    ))
    assert kerasreg.get_placement("test_drop_then_norm").block == ("weight", "drop", "norm", "act")
    _check_custom_placement_end_to_end("test_drop_then_norm", tmp_path)


def test_custom_placement_decorator_with_options_works_end_to_end(tmp_path):
    @kerasreg.register_placement(dropout_scope="head_only", reference="a test", dropout_kind="gaussian")
    def test_act_norm_head_noise():
        """ReLU then BN in every block, Gaussian dropout only before the head."""
        return "weight act norm"

    p = kerasreg.get_placement("test_act_norm_head_noise")
    assert (p.dropout_scope, p.reference, p.dropout_kind) == ("head_only", "a test", "gaussian")
    model = build_small("cnn1d", placement="test_act_norm_head_noise")
    assert type(model.get_layer("head_drop")) is keras.layers.GaussianDropout
    _check_custom_placement_end_to_end("test_act_norm_head_noise", tmp_path)


@pytest.mark.parametrize("norm", ["batch", "layer", "group"])
def test_norm_before_the_weights_normalises_the_incoming_channels(norm):
    """A norm placed before the weight sees the previous block's channels, not the weight's."""
    p = Placement("norm_first_probe", "norm weight act", description="x")
    for model_name in ("mlp", "cnn2d", "resnet_small"):
        model = build_small(model_name, placement=p, norm=norm)
        assert model(small_inputs(model_name), training=True).shape == (4, 3)
    model = build_small("mlp", placement=p, norm=norm, widths=(8, 6))
    norms = [layer for layer in model.layers if "norm" in layer.name]
    assert [layer.input.shape[-1] for layer in norms] == [10, 8]
    if norm == "group":
        assert [layer.groups for layer in norms] == [2, 8]


@pytest.mark.parametrize("placement, wide_resnet_order", [("drop_before_weight", True), ("bn_act_drop", False)])
def test_the_wide_resnet_order_feeds_each_dropout_to_a_convolution_and_keeps_the_skip_path_clean(
        placement, wide_resnet_order):
    model = kerasreg.build_model("resnet_small", placement=placement, dropout_rate=0.5, input_shape=(8, 8, 1),
                                 num_classes=10, stages=2, filters=4, seed=0)
    graph = graph_of(model)
    nodes = nodes_in_order(graph)
    drops = [node for node in nodes if node.operation.name.endswith("_drop")]
    assert len(drops) == 5  # the stem's and two per residual branch
    fed = {consumer.operation.name.rsplit("_", 1)[-1]
           for node in drops for consumer in consumers(graph, *node.output_tensors)}
    skips = {producer(node.input_tensors[0]).operation.name.rsplit("_", 1)[-1]
             for node in nodes if node.operation.name.endswith("_add")}
    assert (fed == {"weight"} and "drop" not in skips) == wide_resnet_order, (fed, skips)
