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


def test_every_declared_option_is_a_flag_and_a_run_config_field_and_every_architecture_option_a_flag():
    help_text = cli.make_parser()._subparsers._group_actions[0].choices["train"].format_help()
    fields = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for option in options.BUILD_OPTIONS:
        assert option.flag in help_text
        assert fields[option.name] == option.default
    for name, defaults in options.architecture_options().items():
        assert "--" + name.replace("_", "-") in help_text
        assert name not in fields  # an architecture's options live in `options`, checked against its signature
        for model, default in defaults.items():
            assert kerasreg.model_options(model)[name] == default
            assert RunConfig(model=model, options={name: default}).options == {name: default}


@pytest.mark.parametrize("model, text, expected", [
    ("resnet_small", "4", 4),
    ("cnn1d", "4", (4,)),
    ("cnn1d", "4,8", (4, 8)),
    ("mlp", "16x16", (16, 16)),
])
def test_architecture_option_text_is_parsed_by_the_models_own_default(model, text, expected):
    name = "widths" if model == "mlp" else "filters"
    assert options.architecture_kwargs(model, {name: text}) == {name: expected}
    assert RunConfig(model=model, options={name: text}).options == {name: expected}
    assert RunConfig(model=model, options={name: text}).model_kwargs()[name] == expected


def test_unparsable_architecture_option_names_value_and_model():
    with pytest.raises(ValueError, match=r"argument `stages` of model 'resnet_small'. Expected an int.*stages='two'"):
        RunConfig(model="resnet_small", options={"stages": "two"})


@pytest.mark.parametrize("model, given, message", [
    ("cnn1d", {"widths": (8,)}, r"Unknown option\(s\) widths for model 'cnn1d'. Valid options: filters, kernel_size."),
    ("mlp", {"widths": (8,), "stages": 2, "filters": 4},
     r"Unknown option\(s\) filters, stages for model 'mlp'. Valid options: widths."),
])
def test_an_option_the_architecture_does_not_take_is_refused_naming_model_and_valid_options(model, given, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(model=model, options=given)


def test_options_must_be_a_dict():
    with pytest.raises(ValueError, match=r"argument `options`. Expected a dict.*Received: options=\(16, 16\)"):
        RunConfig(options=(16, 16))


def test_the_old_flat_form_is_refused_saying_where_the_options_go(tmp_path):
    with pytest.raises(TypeError, match="'widths'"):
        RunConfig(model="mlp", widths=(8,))
    path = tmp_path / "flat.toml"
    path.write_text('model = "mlp"\nwidths = [16]\n')
    with pytest.raises(ValueError, match=r"'widths' in .*flat.toml go in the `options` table: move them under "
                                         r"`\[options\]`"):
        RunConfig.from_toml(path)


def test_a_run_file_holds_the_architecture_options_in_an_options_table_that_flags_add_to(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "cnn1d"\nepochs = 2\n\n[options]\nfilters = [4, 8]\nkernel_size = 3\n')
    assert RunConfig.from_toml(path).options == {"filters": (4, 8), "kernel_size": 3}
    config = RunConfig.from_toml(path, epochs=None, options={"kernel_size": "5"})
    assert (config.epochs, config.options) == (2, {"filters": (4, 8), "kernel_size": 5})
    path.write_text('model = "cnn1d"\n[options]\nfilter = [4]\n')
    with pytest.raises(ValueError, match=r"Unknown option\(s\) filter for model 'cnn1d'"):
        RunConfig.from_toml(path)


def test_train_flags_give_the_architecture_options_parsed_for_the_chosen_model(tmp_path, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(kerasreg.runs, "run", lambda config, **kwargs: trained.append(config) or tmp_path)
    path = tmp_path / "run.toml"
    path.write_text('model = "cnn1d"\n[options]\nkernel_size = 3\n')
    assert cli.main(["train", "--config", str(path), "--filters", "4,8", "--quiet"]) == 0
    assert cli.main(["train", "--model", "resnet_small", "--filters", "4", "--placement", "none", "--quiet"]) == 0
    assert [(c.model, c.options) for c in trained] == [("cnn1d", {"kernel_size": 3, "filters": (4, 8)}),
                                                       ("resnet_small", {"filters": 4})]
    assert trained[1].placement == "none"
    capsys.readouterr()
    assert cli.main(["train", "--filters", "4", "--quiet"]) == 2
    assert "Unknown option(s) filters for model 'mlp'. Valid options: widths." in capsys.readouterr().err
    assert len(trained) == 2


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
    config = RunConfig(model="wide", options={"width": "5", "depth": 2}, placement="none", epochs=1)
    assert config.options == {"width": 5, "depth": 2}
    model = kerasreg.build_model("wide", input_shape=(6,), num_classes=3, **config.model_kwargs())
    assert "Dense(5) > ReLU  x2 > Dense(3)" in kerasreg.describe(model)
    assert RunConfig.from_dict({"model": "wide", "options": {"width": 4}}).options == {"width": 4}
    with pytest.raises(ValueError, match=r"Unknown option\(s\) widht for model 'wide'. Valid options: width, depth."):
        RunConfig(model="wide", options={"widht": 4})
    with pytest.raises(ValueError, match=r"'width' in config go in the `options` table"):
        RunConfig.from_dict({"model": "wide", "width": 4})
