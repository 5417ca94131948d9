"""End-to-end tests of the `kerasreg` command: `list`, `build` and `data`."""

import os
import re
import subprocess
import sys

import pytest

import kerasreg
from kerasreg import cli
from kerasreg.models import placements, zoo


def _listed_names(output, section):
    """Names in the first column of one section of `kerasreg list`."""
    body = output.split(f"{section}:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in body.splitlines() if line.strip()]


def test_list_names_every_model_placement_and_kind(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert _listed_names(out, "Models") == kerasreg.list_models()
    assert _listed_names(out, "Placements") == kerasreg.list_placements()
    assert _listed_names(out, "Dropout kinds") == kerasreg.list_dropout_kinds()
    assert _listed_names(out, "Norm kinds") == kerasreg.list_norm_kinds()
    assert re.search(r"^  bn_act_drop +weight > norm > act > drop +The everyday recipe", out, re.M)
    assert re.search(r"^  head_dropout +weight > norm > act \(drop only before the head\)", out, re.M)
    assert re.search(r"^  mlp +Multilayer perceptron", out, re.M)
    assert re.search(r"^  uout +Uniform multiplicative noise", out, re.M)


def test_python_m_kerasreg_list_runs_in_a_fresh_process():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "kerasreg", "list"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    # Other tests register entries in this process only; the fresh one has the built-ins.
    built_in = [m for m in kerasreg.list_models() if zoo.get_model_fn(m).__module__ == "kerasreg.zoo"]
    built_in += [p.name for p in placements.BUILT_INS]
    for name in built_in:
        assert re.search(rf"^  {name} ", result.stdout, re.M), name
    assert "Norm kinds:" in result.stdout


@pytest.mark.parametrize("placement", kerasreg.list_placements())
def test_build_prints_the_summary_and_the_block_structure(placement, capsys):
    argv = ["build", "mlp", "--placement", placement, "--input-shape", "40", "--num-classes", "10",
            "--api", "sequential"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert 'Model: "mlp"' in out
    assert "block1_weight (Dense)" in out and "head (Dense)" in out
    model = kerasreg.build_model("mlp", placement=placement, input_shape=(40,), num_classes=10, api="sequential")
    assert f"Total params: {model.count_params():,}" in out
    assert out.rstrip().splitlines()[-1] == kerasreg.describe(model)


def test_build_default_mlp_structure(capsys):
    assert cli.main(["build", "mlp", "--input-shape", "40", "--num-classes", "10", "--api", "sequential"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == "Dense(100) > BatchNorm > ReLU > Dropout(0.2)  x2 > Dense(10)"


@pytest.mark.parametrize(
    "argv,last_line",
    [
        (["cnn2d", "--input-shape", "8,8,1", "--filters", "4,8", "--placement", "ic", "--norm", "layer"],
         "Conv2D(4, 3x3) > ReLU > LayerNorm > Dropout(0.2) > Conv2D(8, 3x3) > ReLU > LayerNorm > Dropout(0.2)"
         " > Flatten > Dense(3)"),
        (["mlp", "--input-shape", "10", "--widths", "8", "--placement", "bn_act_drop", "--dropout", "gaussian",
          "--dropout-rate", "0.1", "--bn-preset", "torch"],
         "Dense(8) > BatchNorm > ReLU > GaussianDropout(0.1) > Dense(3)"),
        (["resnet_small", "--input-shape", "16", "--filters", "4", "--placement", "none"],
         "Reshape > Conv1D(4, 3) > ReLU > Conv1D(4, 3) > ReLU > Conv1D(4, 3) > ReLU > + skip  x2"
         " > GlobalAveragePooling1D > Dense(3)"),
    ],
)
def test_build_passes_every_model_flag(argv, last_line, capsys):
    assert cli.main(["build", *argv, "--num-classes", "3"]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == last_line


@pytest.mark.parametrize(
    "argv,message",
    [
        (["mpl"], r"Unknown model 'mpl'\. Did you mean 'mlp'\?"),
        (["mlp", "--placement", "bn_befor_act"], r"Unknown placement 'bn_befor_act'\. Did you mean 'bn_before_act'\?"),
        (["mlp", "--dropout", "gausian"], r"Unknown dropout kind 'gausian'\. Did you mean 'gaussian'\?"),
        (["mlp", "--norm", "batchnorm"], r"Unknown norm kind 'batchnorm'\. Did you mean 'batch'\?"),
        (["mlp", "--dropout-rate", "1.5"], r"Expected a float in \[0, 1\)\. Received: dropout_rate=1\.5"),
        (["mlp", "--dropout", "spatial"], r"Dropout kind 'spatial' drops whole channels"),
        (["mlp", "--api", "subclass"], r"Received: api='subclass'"),
        (["resnet_small", "--api", "sequential"], r"residual connections.*api='functional'"),
        (["cnn2d"], r"model 'cnn2d'\. Expected \(height, width\)"),
    ],
)
def test_build_with_bad_arguments_exits_2_with_a_message(argv, message, capsys):
    argv = ["build", *argv, "--num-classes", "10"]
    argv += [] if "--input-shape" in argv else ["--input-shape", "40"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("kerasreg build: error: ")
    assert re.search(message, captured.err)
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["build", "mlp", "--num-classes", "10"], "the following arguments are required: --input-shape"),
        (["build", "mlp", "--input-shape", "4a", "--num-classes", "10"], "Expected comma-separated ints"),
        (["build", "mlp", "--input-shape", "40", "--num-classes", "ten"], "invalid int value: 'ten'"),
        (["bulid"], "invalid choice: 'bulid'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_command_lines_exit_2_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: kerasreg" in err and message in err


def test_shape_parser():
    assert cli._shape("40") == (40,)
    assert cli._shape("28,28,1") == (28, 28, 1)
    assert cli._shape("8x8x1") == (8, 8, 1)


def test_data_list_and_info(tmp_path, capsys):
    assert cli.main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "mnist1d" in listing and "digits" in listing and str(tmp_path) in listing
    assert cli.main(["data", "info", "digits", "--data-dir", str(tmp_path)]) == 0
    info = capsys.readouterr().out
    assert "10 classes" in info and "(8, 8, 1)" in info
    assert list(tmp_path.iterdir()) == [], "listing and describing prepare nothing"


def test_data_info_unknown_name_exits_2_with_suggestion(capsys):
    assert cli.main(["data", "info", "mnist1f"]) == 2
    assert "Did you mean 'mnist1d'" in capsys.readouterr().err
