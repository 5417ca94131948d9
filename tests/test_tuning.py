"""Placements as KerasTuner hyperparameters: the space, the hypermodel under plain KerasTuner, `kerasreg tune`."""

import dataclasses
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras_tuner
import pytest
from helpers import run_python

import kerasreg
from kerasreg import cli
from kerasreg.tuning import PlacementHyperModel, TuneConfig, get_objective, search_space, tune
from kerasreg.tuning.space import SPACE_FIELDS

# Runs of an epoch or two, here and in the processes started: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

TUNE_TOML = """model = "mlp"
placements = ["bn_before_act", "bn_act_drop", "dropout"]
rates = [0.1, 0.3]
options = {widths = [[16, 16], [32]]}
epochs = 2
max_trials = 3
best = 2
"""


@pytest.fixture(scope="module")
def data():
    return kerasreg.load_dataset("mnist1d")


def test_the_space_comes_from_the_registries():
    space = search_space("mlp")
    assert space.placements == tuple(kerasreg.list_placements())
    assert space.norms == ("batch",) and space.bn_presets == ("keras",) and space.dropouts == ()
    assert search_space("mlp", dropouts="*").dropouts == tuple(kerasreg.list_dropout_kinds())
    assert search_space("mlp", placements="bn_*").placements == ("bn_act_drop", "bn_after_act", "bn_before_act")


def test_the_axes_are_the_arguments_of_search_space_and_the_fields_of_a_tune_config():
    assert SPACE_FIELDS == ("placements", "rates", "dropouts", "norms", "bn_presets", "options")
    arguments = inspect.signature(search_space).parameters
    fields = {field.name: field.default for field in dataclasses.fields(TuneConfig)}
    assert {name: arguments[name].default for name in SPACE_FIELDS} == dict.fromkeys(SPACE_FIELDS)
    assert {name: fields[name] for name in SPACE_FIELDS} == dict.fromkeys(SPACE_FIELDS)


def test_a_placement_registered_now_is_searchable_at_once(data):
    kerasreg.register_placement(kerasreg.Placement("tuning_norm_last", "weight act drop norm",
                                                   description="Dropout, then BatchNorm."))
    hypermodel = PlacementHyperModel("mlp", input_shape=data.input_shape, num_classes=10,
                                     placements="tuning_*", rates=[0.3], options={"widths": [[8]]})
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert hp.values == {"placement": "tuning_norm_last", "dropout_rate": 0.3, "norm": "batch",
                         "bn_preset": "keras", "widths": "8"}
    assert model.kerasreg_config["placement"] == "tuning_norm_last"
    assert model.kerasreg_config["options"]["widths"] == [8]


def test_the_rate_is_a_hyperparameter_only_of_placements_with_dropout():
    space = search_space("mlp", placements=["none", "dropout"], rates={"min": 0.1, "max": 0.3, "step": 0.1})
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    hp.values["placement"] = "none"
    assert not hp.is_active("dropout_rate")
    hp.values["placement"] = "dropout"
    assert hp.is_active("dropout_rate")


@pytest.mark.parametrize("kwargs, match", [
    ({"placements": []}, "Expected a non-empty list of names or an fnmatch pattern \\(empty search space\\)"),
    ({"placements": "zz*"}, "Expected a pattern matching at least one of"),
    ({"placements": ["bn_befor_act"]}, "Did you mean 'bn_before_act'"),
    ({"rates": []}, "Received: rates=\\[\\]"),
    ({"rates": [1.5]}, "Received: rates=1.5"),
    ({"options": {"widths": []}}, "empty search space"),
    ({"options": {"stages": [2]}}, "Unknown option\\(s\\) stages for model 'mlp'"),
])
def test_an_empty_or_unknown_search_space_is_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        search_space("mlp", **kwargs)


def test_a_kind_that_cannot_build_the_architecture_is_refused_before_any_trial():
    with pytest.raises(ValueError, match="`dropouts`: 'spatial' cannot build 'mlp'"):
        PlacementHyperModel("mlp", input_shape=(40,), num_classes=10, placements=["dropout"], dropouts=["spatial"])


def test_an_objective_no_trial_logs_is_refused():
    with pytest.raises(ValueError, match="argument `objective`. Expected one of val_accuracy, val_loss, "
                                         "clean_gap_accuracy.*Received: objective='test_accuracy'"):
        get_objective("test_accuracy")
    assert get_objective("clean_gap_accuracy").direction == "min"
    assert get_objective("val_accuracy").direction == "max"


@pytest.mark.parametrize("args, match", [
    (["--objective", "test_accuracy"], "Expected one of val_accuracy, val_loss, clean_gap_accuracy, clean_gap_loss, "
                                       "reported_gap_accuracy, reported_gap_loss. Received: objective='test_accuracy'"),
    (["--placements", "zz_nothing"], "Unknown placement 'zz_nothing'"),
    (["--tuner", "hyperband", "--max-trials", "5"], "leave `max_trials` out with tuner='hyperband'"),
])
def test_bad_tune_input_exits_2_naming_it_before_anything_is_written(tmp_path, capsys, args, match):
    assert cli.main(["tune", "--out", str(tmp_path / "tune"), "--quiet", *args]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "tune").exists()


def test_tune_without_keras_tuner_says_which_extra_to_install(tmp_path):
    result = run_python("import sys\nsys.modules['keras_tuner'] = None\nfrom kerasreg import cli\n"
                        "sys.exit(cli.main(['tune', '--out', sys.argv[1], '--quiet']))", tmp_path / "tune", check=False)
    assert result.returncode == 2
    assert 'Tuning needs KerasTuner. Install it with: pip install "kerasreg[tune]"' in result.stderr


def test_plain_keras_tuner_searches_it_and_every_trial_logs_the_gaps(data, tmp_path):
    hypermodel = PlacementHyperModel("mlp", input_shape=data.input_shape, num_classes=10,
                                     placements=["bn_before_act", "dropout"], rates=[0.2],
                                     options={"widths": [[16]]})
    tuner = keras_tuner.RandomSearch(hypermodel, objective=keras_tuner.Objective("clean_gap_accuracy", "min"),
                                     max_trials=2, directory=str(tmp_path), seed=0)
    tuner.search(data, epochs=2, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    for trial in trials:
        for key in ("val_accuracy", "clean_gap_accuracy", "clean_gap_loss", "reported_gap_accuracy"):
            assert trial.metrics.exists(key), key
        placement = trial.hyperparameters.get("placement")
        assert trial.metrics.exists("variance_shift_max") == (placement == "bn_before_act")
        # The trial keeps its best epoch by the objective: the score is the returned weights' gap.
        gaps = trial.metrics.get_history("clean_gap_accuracy")
        assert trial.score == pytest.approx(min(g.value[0] for g in gaps))
    best = tuner.get_best_models(1)[0]
    assert best.kerasreg_config["placement"] in ("bn_before_act", "dropout")


def test_tune_exports_the_best_trials_and_writes_the_summary(tmp_path, capsys):
    config = tmp_path / "tune.toml"
    config.write_text(TUNE_TOML)
    out = tmp_path / "tune"
    assert cli.main(["tune", "--config", str(config), "--out", str(out), "--objective", "clean_gap_accuracy",
                     "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "## Best trials" in printed and "Mean `clean_gap_accuracy` per hyperparameter value" in printed
    exports = sorted((out / "exports").iterdir())
    assert len(exports) == 2
    manifests = [kerasreg.load(path).manifest for path in exports]
    scores = []
    for path, manifest in zip(exports, manifests):
        tuning = manifest["config"]["tuning"]
        assert path.name.startswith(f"trial{tuning['trial_id']}-")
        assert tuning["objective"] == {"name": "clean_gap_accuracy", "direction": "min"}
        assert tuning["search_space"]["placements"] == ["bn_before_act", "bn_act_drop", "dropout"]
        assert tuning["search_space"]["options"] == {"widths": ["16,16", "32"]}
        assert manifest["model"]["placement"] == tuning["hyperparameters"]["placement"]
        assert manifest["metrics"]["clean_gap_accuracy"] == pytest.approx(tuning["score"])
        scores.append(tuning["score"])
    rows = json.loads((out / "tune.json").read_text())
    assert rows["config"]["objective"] == "clean_gap_accuracy"
    summary = (out / "summary.md").read_text()
    best_first = sorted(scores)
    assert "| 1 | " in summary and f"{best_first[0]:.4f}" in summary.split("| 2 |")[0]
    comparison = kerasreg.compare_exports([out / "exports"])
    assert len(comparison.rows) == 2


def test_a_tune_folder_is_never_started_over_and_resumes_only_with_its_settings(tmp_path, capsys):
    config = tmp_path / "tune.toml"
    config.write_text(TUNE_TOML.replace("max_trials = 3", "max_trials = 1").replace("best = 2", "best = 1"))
    out = tmp_path / "tune"
    args = ["tune", "--config", str(config), "--out", str(out), "--quiet"]
    for not_a_search in (out, tmp_path):  # missing, and a folder that holds no search
        assert cli.main(["tune", "--config", str(config), "--out", str(not_a_search), "--quiet", "--resume"]) == 2
        assert f"Cannot resume a search in {not_a_search}: it holds no search" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "already holds a search (tune.json). Continue it with resume=True" in capsys.readouterr().err
    assert cli.main([*args, "--resume", "--epochs", "3"]) == 2
    assert "its settings differ (config.epochs: 2 -> 3)" in capsys.readouterr().err
    assert cli.main([*args, "--resume"]) == 0  # nothing left to run: the same best trial, exported once
    assert len(list((out / "exports").iterdir())) == 1


@pytest.mark.slow
def test_a_killed_tune_resumes_finished_trials_kept_and_the_running_one_from_its_checkpoint(tmp_path):
    config = tmp_path / "tune.toml"
    config.write_text(TUNE_TOML.replace("epochs = 2", "epochs = 30").replace("[[16, 16], [32]]", "[[8]]"))
    out = tmp_path / "tune"
    command = [sys.executable, "-m", "kerasreg", "tune", "--config", str(config), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    trial_1 = out / "keras_tuner" / "trial_1" / "run"
    deadline = time.monotonic() + 240
    # Two epochs logged: the first one's checkpoint is surely written.
    while not ((trial_1 / "history.csv").exists() and (trial_1 / "history.csv").read_text().count("\n") >= 3):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (trial_1 / "result.json").exists(), "killed mid-trial"
    finished = (out / "keras_tuner" / "trial_0" / "run" / "result.json").stat().st_mtime_ns
    started = (trial_1 / "run_config.json").stat().st_mtime_ns  # a fresh start rewrites it, a resume keeps it

    report = tune(TuneConfig.from_toml(config), out, resume=True, verbose=0)
    assert sorted(r["trial"] for r in report.rows) == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in report.rows)
    assert (out / "keras_tuner" / "trial_0" / "run" / "result.json").stat().st_mtime_ns == finished
    assert (trial_1 / "run_config.json").stat().st_mtime_ns == started
    assert len(json.loads((trial_1 / "result.json").read_text())["history"]["loss"]) == 30
    assert len(report.exports) == 2


def test_hyperband_continues_its_promoted_trials_from_their_checkpoints(tmp_path):
    config = TuneConfig(placements=["bn_before_act", "dropout"], rates=[0.2], options={"widths": [[16]]},
                        tuner="hyperband", epochs=2, factor=2, best=1)
    report = tune(config, tmp_path / "tune", verbose=0)
    completed = [r for r in report.rows if r["status"] == "COMPLETED"]
    assert len(completed) >= 2 and len(report.exports) == 1
    trials = [json.loads((tmp_path / "tune" / "keras_tuner" / f"trial_{r['trial']}" / "trial.json").read_text())
              for r in completed]
    promoted = [t for t in trials if t["hyperparameters"]["values"].get("tuner/initial_epoch", 0) > 0]
    assert promoted, "hyperband continued at least one trial from its parent's checkpoint"
    for trial in promoted:  # trained only the epochs its bracket adds
        run = json.loads((tmp_path / "tune" / "keras_tuner" / f"trial_{trial['trial_id']}" / "run" /
                          "result.json").read_text())
        values = trial["hyperparameters"]["values"]
        assert run["config"]["epochs"] == values["tuner/epochs"] - values["tuner/initial_epoch"]
