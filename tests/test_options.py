"""The factory's options are declared once and reach the CLI, RunConfig and the manifest."""

import dataclasses
import inspect

import pytest

import kerasreg
from kerasreg import cli
from kerasreg.models import options, placements
from kerasreg.runs import RunConfig


def test_build_model_defaults_are_the_declared_ones():
    params = inspect.signature(kerasreg.build_model).parameters
    assert {o.name: params[o.name].default for o in options.BUILD_OPTIONS} == options.DEFAULTS


def test_every_declared_and_architecture_option_is_a_flag_and_a_run_config_field():
    help_text = cli.make_parser()._subparsers._group_actions[0].choices["train"].format_help()
    fields = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for option in options.BUILD_OPTIONS:
        assert option.flag in help_text
        assert fields[option.name] == option.default
    for name, defaults in options.architecture_options().items():
        assert "--" + name.replace("_", "-") in help_text
        for model, default in defaults.items():
            assert kerasreg.model_options(model)[name] == default
            if name in fields:  # known when RunConfig was defined; a model registered later (by another test
                assert fields[name] is None  # module in this process) has its options kept in `options`
            else:
                assert RunConfig(model=model, **{name: default}).options[name] == default


@pytest.mark.parametrize("model, text, expected", [
    ("resnet_small", "4", 4),
    ("cnn1d", "4", (4,)),
    ("cnn1d", "4,8", (4, 8)),
    ("mlp", "16x16", (16, 16)),
])
def test_architecture_option_text_is_parsed_by_the_models_own_default(model, text, expected):
    name = "widths" if model == "mlp" else "filters"
    assert options.architecture_kwargs(model, {name: text}) == {name: expected}
    assert getattr(RunConfig(model=model, **{name: text}), name) == expected


def test_unparsable_architecture_option_names_value_and_model():
    with pytest.raises(ValueError, match=r"argument `stages` of model 'resnet_small'. Expected an int.*stages='two'"):
        RunConfig(model="resnet_small", stages="two")


def test_manifest_model_part_records_every_declared_option():
    model = kerasreg.build_model("cnn1d", input_shape=(16,), num_classes=3, filters=(4,), seed=0)
    config = model.kerasreg_config
    assert set(options.RECORDED) <= set(config)
    assert {o.name for o in options.BUILD_OPTIONS} <= set(options.RECORDED)
    assert config["options"] == {"filters": [4], "kernel_size": 5}


@pytest.mark.parametrize("record, uses_dropout", [
    ({"placement": "head_dropout"}, True),
    ({"placement": "bn_before_act"}, False),
    ({"placement": "elsewhere", "block": ["weight", "norm", "act"], "dropout_scope": "head_only"}, True),
    ({"placement": "elsewhere", "block": ["weight", "act"]}, False),
])
def test_recorded_placement_decides_dropout_for_names_and_recorded_blocks(record, uses_dropout):
    placement = placements.recorded_placement(record)
    assert placement.uses_dropout is uses_dropout
    name = kerasreg.run_name({"model": "mlp", **record, "dropout_rate": 0.3, "seed": 0})
    assert ("standard0.3" in name) is uses_dropout


def wide(blocks, *, input_shape, width=8, depth=1):
    """Wide blocks: a model of the user's, registered by the tests that use it."""
    layers = blocks.flatten(input_shape)
    for i in range(depth):
        layers += blocks.dense(f"block{i + 1}", width)
    return layers


def test_a_registered_models_options_work_in_the_cli(capsys):
    kerasreg.register_model(wide)
    assert cli.main(["build", "wide", "--input-shape", "6", "--num-classes", "3", "--width", "5", "--depth", "2",
                     "--placement", "none"]) == 0
    assert "Dense(5) > ReLU  x2 > Dense(3)" in capsys.readouterr().out


def test_a_run_config_takes_the_options_of_a_model_registered_after_import():
    RunConfig(epochs=1)  # the class is in use before the model exists
    kerasreg.register_model(wide)
    config = RunConfig(model="wide", width="5", depth=2, epochs=1)
    assert (config.width, config.depth, config.options) == (5, 2, {"width": 5, "depth": 2})
    assert config.model_kwargs()["width"] == 5 and config.model_kwargs()["depth"] == 2
    assert RunConfig.from_dict({"model": "wide", "width": 4}).width == 4
    with pytest.raises(TypeError, match="'widht'"):
        RunConfig(model="wide", widht=4)
    with pytest.raises(ValueError, match="'widht'.*width"):
        RunConfig.from_dict({"model": "wide", "widht": 4})
