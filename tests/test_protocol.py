"""The study protocol: two arms (depths), early stopping on validation loss with the best epoch kept."""

import csv
import json

import pytest

import kerasreg
from kerasreg import cli


def test_quick_preset_covers_a_shallow_and_a_deep_arm():
    config = kerasreg.StudyConfig.preset("quick")
    shallow, deep = config.arm_configs()
    # The published study's nine placements: a built-in added later must not change it.
    assert shallow.models == ["mlp"] and shallow.placements == [
        "none", "dropout", "bn_before_act", "bn_after_act", "bn_act_drop", "drop_before_bn", "ic", "head_dropout",
        "uout"]
    assert shallow.rates == [0.2] and len(shallow.seeds) == 5
    assert deep.models == ["resnet_small"] and deep.options == {"stages": 3} and deep.rates == [0.5]
    assert {"bn_before_act", "bn_act_drop", "drop_before_bn", "head_dropout"} <= set(deep.placements)
    assert len(deep.seeds) >= 3 and deep.max_seeds == 10, "the deep arm's undecided contrasts get seeds up to 10"
    assert "uout" in kerasreg.StudyConfig.preset("full").arm_configs()[1].placements
    runs = config.runs()
    assert all(run.patience for run in runs), "every run trains to a validation plateau"
    deep_runs = [run for run in runs if run.model == "resnet_small"]
    assert len(deep_runs) == len(deep.placements) * len(deep.seeds)
    assert all(run.model_kwargs()["stages"] == 3 for run in deep_runs)
    assert {(r.dataset, r.validation_split, r.batch_size) for r in runs} == {("mnist1d", 0.1, 100)}


def test_arms_come_from_a_toml_file(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text('[[arms]]\nname = "a"\nmodels = ["mlp"]\nplacements = ["none"]\nseeds = [0, 1]\nepochs = 2\n'
                    '[[arms]]\nname = "b"\nmodels = ["resnet_small"]\nplacements = ["head_dropout"]\n'
                    'seeds = [0]\nepochs = 2\npatience = 1\noptions = {stages = 1}\n')
    config = kerasreg.StudyConfig.from_toml(path)
    assert [r.run_name() for r in config.runs()] == ["mlp-none-nodrop-seed0", "mlp-none-nodrop-seed1",
                                                     "resnet_small-head_dropout-standard0.2-seed0"]
    assert config.runs()[-1].options == {"stages": 1} and config.runs()[-1].patience == 1
    assert "a: models mlp" in config.describe() and "b: models resnet_small, stages=1" in config.describe()


def test_a_file_that_sets_the_grid_without_arms_is_one_grid(tmp_path):
    path = tmp_path / "one.toml"
    path.write_text('placements = ["none"]\nseeds = [0]\nepochs = 2\n')
    config = kerasreg.StudyConfig.from_toml(path)
    assert [r.run_name() for r in config.runs()] == ["mlp-none-nodrop-seed0"]


@pytest.mark.parametrize("text, message", [
    ('[[arms]]\nmodel = ["mlp"]\n', "Unknown field.*'model'.*An arm may set"),
    ('[[arms]]\nname = "x"\npatience = 0\n', "arm 'x'.*patience"),
    ('[[arms]]\nname = "x"\nplacements = ["bn_befor_act"]\n', "arm 'x'.*placements"),
    ('arms = []\n', "arms"),
    ('[[arms]]\nname = "x"\noptions = {stage = 3}\nmodels = ["resnet_small"]\n', "stage"),
])
def test_bad_arms_are_rejected_before_training(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        kerasreg.StudyConfig.from_toml(path)


def test_early_stopping_keeps_the_epoch_with_the_lowest_validation_loss_after_the_first_patience(tmp_path):
    config = kerasreg.RunConfig(placement="none", dropout_rate=0.0, epochs=40, patience=2)
    path = kerasreg.run(config, out=tmp_path, verbose=0)
    manifest = json.loads((path / "manifest.json").read_text())
    metrics = manifest["metrics"]
    with open(path / "history.csv") as f:
        val_loss = [float(row["val_loss"]) for row in csv.DictReader(f)]
    assert 2 * 2 <= metrics["epochs_run"] == len(val_loss) < 40, "stopped before the cap, not before 2 * patience"
    best = min(range(2, len(val_loss)), key=val_loss.__getitem__) + 1
    assert metrics["best_epoch"] == best and metrics["epochs_run"] == best + 2
    assert metrics["val_loss"] == pytest.approx(val_loss[best - 1], rel=1e-4)


def test_train_cli_takes_patience(tmp_path):
    assert cli.main(["train", "--placement", "none", "--dropout-rate", "0", "--epochs", "40", "--patience", "1",
                     "--out", str(tmp_path), "--quiet"]) == 0
    (path,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    metrics = json.loads((path / "manifest.json").read_text())["metrics"]
    assert metrics["epochs_run"] == metrics["best_epoch"] + 1 < 40
