"""kerasreg study: grid, report, failures, resume after a kill, and bad study files."""

import json
import re
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

import kerasreg
from kerasreg import cli
from kerasreg.analysis import report

# Runs of an epoch or two, here and in the processes started: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

TINY = 'placements = ["none", "dropout"]\nseeds = [0]\nepochs = 2\nmodels = ["mlp"]\n'


def test_tiny_study_end_to_end_through_the_cli(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "study"
    # One worker trains in this process (the spawned pool is tested in test_backends and test_reliability).
    assert cli.main(["study", "--config", str(config), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith("Where should Dropout and BatchNorm go? mnist1d, vs a fixed reference")
    assert printed[1].startswith("mlp: best ") and printed[-1].startswith(f"Report: {out / 'report.md'} ")
    assert re.fullmatch(r"mlp: best (is the reference, none|dropout \d+\.\d\d%; against none) \d+\.\d\d% \(1 seed\): "
                        r"not testable: dropout\.", printed[1]), printed[1]
    assert len(printed) <= 8 and all(len(line) < 120 for line in printed[:-1]), printed
    exports = sorted(p.name for p in (out / "runs").iterdir() if not p.name.startswith("."))
    assert exports == ["mlp-dropout-standard0.2-seed0", "mlp-none-nodrop-seed0"]
    text = (out / "report.md").read_text()
    assert "## Ranking" in text and "## Findings" in text
    line = re.search(r"Training: (\d+) s of work on (\d) workers?, floor \d+ s, wall (\d+) s, \d+% busy\.", text)
    work, workers, wall = map(int, line.groups())
    # The same numbers again from the manifests alone (what benchmarks/study_budget.py --study reads): the
    # study's own count also holds each worker's packing, and its wall time the workers' start-up.
    measured = report.study_time(json.loads(p.read_text()) for p in (out / "runs").glob("*/manifest.json"))
    assert measured["runs"] == 2 and measured["estimated"] == 0 and 1 <= measured["workers"] <= workers
    assert 0 < measured["work_seconds"] <= work + 1 and 0 < measured["wall_seconds"] <= wall + 1
    assert "mlp / dropout / standard 0.2" in text and "mlp / none" in text
    manifest = json.loads((out / "runs" / exports[0] / "manifest.json").read_text())
    accuracy = f"{manifest['metrics']['test_accuracy']:.2%}"
    assert accuracy in text, "the report shows the measured test accuracy"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert (out / "compare.csv").exists() and (out / "study_test_accuracy.png").exists()
    # Run again: nothing trains, and the report keeps the study's time, read from its manifests.
    assert cli.main(["study", "--config", str(config), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    again = re.search(r"Training: (\d+) s of work on (\d) workers?, ", (out / "report.md").read_text())
    assert again and int(again.group(1)) == round(measured["work_seconds"]), again


def test_study_time_reads_work_workers_and_wall_from_manifests():
    def manifest(start, seconds, export):
        return {"created": f"2026-11-28T03:00:{export:02d}+00:00",
                "training": {"started": f"2026-11-28T03:00:{start:02d}.000+00:00", "seconds": seconds}}

    runs = [manifest(0, 10.0, 11), manifest(1, 4.0, 6), manifest(6, 5.0, 12)]  # two at once at most
    assert report.study_time(runs) == {"work_seconds": 19.0, "workers": 2, "wall_seconds": 12.0, "runs": 3,
                                       "estimated": 0}
    assert report.busy_line(report.study_time(runs)) == (
        "Training: 19 s of work on 2 workers, floor 10 s, wall 12 s, 79% busy.")
    old = {"created": "2026-11-28T03:00:20+00:00", "metrics": {"epoch_time_total": 8.0}}  # before 0.3
    with pytest.raises(ValueError, match="1 of 4 manifests record no start"):
        report.study_time([*runs, old])
    measured = report.study_time([*runs, old], workers=2)
    assert measured["estimated"] == 1 and measured["work_seconds"] == 27.0 and measured["wall_seconds"] == 20.0


def test_report_statistics_are_mean_and_t_interval_over_seeds():
    rows = [{"architecture": "mlp", "placement": "ic", "dropout": "standard", "dropout_rate": 0.2, "norm": "batch",
             "test_accuracy": acc, "clean_gap": 0.0, "reported_gap": 0.0, "variance_shift_max": None,
             "train_time": 1.0} for acc in (0.80, 0.82, 0.84)]
    (summary,) = report.summarize(rows)
    mean, half, n = summary.stat("test_accuracy")
    assert n == 3
    assert mean == pytest.approx(0.82)
    assert half == pytest.approx(4.302653 * 0.02 / 3 ** 0.5, rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert summary.stat("variance_shift_max")[2] == 0


@keras.saving.register_keras_serializable(package="kerasreg_tests")
class Poison(keras.layers.Layer):
    """Turns every activation into NaN, so training diverges at once."""

    def call(self, inputs):
        return inputs * float("nan")


@kerasreg.register_norm_kind
def poison_norm(channels, *, bn_preset, name):
    """A norm kind that makes the loss NaN."""
    return Poison(name=name)


def test_workers_started_early_are_the_ones_the_study_trains_on_and_unused_ones_are_stopped(tmp_path, monkeypatch):
    import multiprocessing

    from kerasreg.study import workers

    started = []
    start = workers.start
    monkeypatch.setattr(workers, "start", lambda *key: started.append(key) or start(*key))
    backend = keras.backend.backend()
    workers.start_early(2, backend)
    config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2, models=["mlp"])
    study = kerasreg.run_study(config, tmp_path / "study", workers=2, verbose=0)
    assert not study.failures and len(list((tmp_path / "study" / "runs").glob("*/manifest.json"))) == 2
    assert started == [(2, backend)], "the study started workers of its own"

    def still_alive(processes):
        # Killed processes are reaped by the pool's own thread too: is_alive() may say so a moment late.
        deadline = time.monotonic() + 60
        while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        return [p for p in processes if p.is_alive()]

    before = multiprocessing.active_children()
    workers.start_early(2, backend)
    waiting = [p for p in multiprocessing.active_children() if p not in before]
    assert len(waiting) == 2
    workers.stop_early()  # e.g. the study's settings asked for other workers
    assert still_alive(waiting) == []
    with pytest.raises(ValueError, match="placements"):  # a grid refused after its workers started
        kerasreg.run_study(kerasreg.StudyConfig(placements=["bn_befor_act"]), tmp_path / "bad", workers=2)
    assert still_alive([p for p in multiprocessing.active_children() if p not in before]) == []


@pytest.mark.filterwarnings("ignore:Model 'mlp' does not output probabilities")  # its NaN outputs are not
def test_failed_run_is_reported_and_the_rest_complete(tmp_path):
    config = kerasreg.StudyConfig(placements=["bn_before_act"], norms=["batch", "poison_norm"], seeds=[0], epochs=2)
    outcome = kerasreg.run_study(config, tmp_path, workers=1, verbose=0)
    (failed,) = outcome.failures
    assert "poison_norm" in failed and "diverged" in outcome.failures[failed]
    assert (tmp_path / "runs" / "mlp-bn_before_act-nodrop-seed0" / "manifest.json").exists()
    assert not (tmp_path / "runs" / failed).exists()
    text = (tmp_path / "report.md").read_text()
    assert "## Failed runs" in text and failed in text
    assert json.loads((tmp_path / "failures.jsonl").read_text())["run"] == failed


@pytest.mark.parametrize("text, field", [
    ("rates = [1.5]\n", "rates"),
    ('placements = ["bn_befor_act"]\n', "placements"),
    ("seeds = [0.5]\n", "seeds"),
    ("epochs = 0\n", "epochs"),
    ("models = []\n", "models"),
    ('dataset = "mnist1f"\n', "dataset"),
    ("validation_split = 1.5\n", "validation_split"),
    ('bn_preset = "pytorch"\n', "bn_preset"),
    ('optimizer = "adamm"\n', "optimizer"),
])
def test_bad_study_file_is_rejected_before_training_naming_the_field(tmp_path, capsys, text, field):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert cli.main(["study", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert f"field `{field}`" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_study_field_is_named(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("seed = 1\n")
    with pytest.raises(ValueError, match=r"Unknown field\(s\) 'seed'.*Valid fields: models"):
        kerasreg.StudyConfig.from_toml(config)


@pytest.mark.slow
def test_rerun_after_kill_skips_exported_runs(tmp_path, capsys):
    config = tmp_path / "three.toml"
    config.write_text('placements = ["none", "dropout", "bn_before_act"]\nseeds = [0]\nepochs = 3\n')
    out = tmp_path / "study"
    command = [sys.executable, "-m", "kerasreg", "study", "--config", str(config), "--out", str(out), "--resume",
               "--workers", "1"]
    env = dict(os.environ)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = out / "runs" / "mlp-none-nodrop-seed0" / "manifest.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not first.exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the study finished before it could be killed"
    assert first.exists() and not (out / "report.md").exists()
    created = json.loads(first.read_text())["created"]
    # The worker may finish another run in the moment before the kill.
    exported = len(list((out / "runs").glob("*/manifest.json")))
    assert 1 <= exported < 3

    # The rerun in this process: only the killed one needs a process of its own.
    capsys.readouterr()
    assert cli.main(command[3:]) == 0
    err = capsys.readouterr().err
    assert f"skipping {exported} already exported" in err
    # Not a terminal: one progress line per finished run instead of a bar.
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == [f"[{n}/3" for n in range(exported + 1, 4)]
    assert all(": test accuracy 0." in line for line in lines), lines
    assert json.loads(first.read_text())["created"] == created
    assert len([p for p in (out / "runs").iterdir() if not p.name.startswith(".")]) == 3
    assert (out / "report.md").exists()
