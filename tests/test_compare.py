"""Tests of kerasreg.compare and `kerasreg compare`: re-evaluation, grouping, sorting, files, errors."""

import csv
import json
import shutil

import numpy as np
import pytest

import kerasreg
from kerasreg.cli import main
from kerasreg.data import load_dataset
from kerasreg.training import RunResult, train


class _Synthetic:
    """A stand-in dataset with a test split, so a second dataset costs nothing."""

    x = np.random.default_rng(0).random((50, 8, 8, 1), dtype="float32")
    y = np.arange(50) % 10

    def as_numpy(self, split):
        return self.x, self.y


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def exports(data_dir, tmp_path_factory):
    """Two digits runs trained for two epochs, plus one run on a stand-in dataset."""
    folder = tmp_path_factory.mktemp("exports") / "saved_models"
    data = load_dataset("digits", data_dir=data_dir)
    for placement in ("bn_act_drop", "dropout"):
        model = kerasreg.build_model("mlp", placement=placement, widths=(16, 16),
                                     input_shape=data.input_shape, num_classes=10, seed=0)
        kerasreg.export_run(train(model, data, epochs=2, learning_rate=1e-2, verbose=0), out=folder)
    model = kerasreg.build_model("mlp", placement="none", widths=(16,), input_shape=(8, 8, 1),
                                 num_classes=10, seed=0)
    config = {**model.kerasreg_config, "dataset": "synthetic", "validation_split": 0.1, "split_seed": 0}
    synthetic = RunResult(
        model=model, config=config, history={"loss": [2.3], "clean_gap_accuracy": [0.01]},
        val_metrics={"loss": 2.3, "accuracy": 0.1}, test_metrics={"loss": 2.3, "accuracy": 0.1},
        gaps={"clean_gap_accuracy": 0.01, "clean_gap_loss": 0.0, "reported_gap_accuracy": 0.0,
              "reported_gap_loss": 0.0},
        epoch_times=[0.1],
    )
    kerasreg.export_run(synthetic, out=folder)
    (folder / "README.md").write_text("exports land here\n")
    return folder


@pytest.fixture
def synthetic_dataset(monkeypatch):
    import kerasreg.data

    real = kerasreg.data.load_dataset

    def load(name, **kwargs):
        return _Synthetic() if name == "synthetic" else real(name, **kwargs)

    monkeypatch.setattr(kerasreg.data, "load_dataset", load)


def test_compare_reevaluates_and_groups_by_dataset(exports, data_dir, synthetic_dataset):
    comparison = kerasreg.compare_exports(exports, data_dir=data_dir, latency_repeats=2)
    assert list(comparison.groups) == ["digits", "synthetic"]
    digits = comparison.groups["digits"]
    assert sorted(row["placement"] for row in digits) == ["bn_act_drop", "dropout"]
    gaps = [row["clean_gap"] for row in digits]
    assert gaps == sorted(gaps)
    for row in digits:
        manifest = kerasreg.load(row["path"]).manifest
        # Re-evaluated through the SavedModel; equals Keras's evaluate() recorded by train().
        assert row["test_accuracy"] == pytest.approx(manifest["metrics"]["test_accuracy"], abs=1e-6)
        assert row["clean_gap"] == manifest["metrics"]["clean_gap_accuracy"]
        assert row["parameters"] == manifest["model"]["parameters"]
        assert row["size_kb"] > 0 and row["latency_ms"] > 0
    (synthetic,) = comparison.groups["synthetic"]
    assert (synthetic["placement"], synthetic["dropout"], synthetic["dropout_rate"]) == ("none", "none", 0.0)
    assert synthetic["variance_shift_max"] is None
    table = comparison.format_table()
    assert "dataset: digits (2 runs, sorted by clean_gap, best first)" in table
    assert "dataset: synthetic (1 run" in table

    by_accuracy = kerasreg.compare_exports(exports, sort="test_accuracy", data_dir=data_dir, latency_repeats=1)
    accuracies = [row["test_accuracy"] for row in by_accuracy.groups["digits"]]
    assert accuracies == sorted(accuracies, reverse=True)


def test_cli_compare_writes_table_csv_markdown_and_plots(exports, data_dir, synthetic_dataset, tmp_path,
                                                         monkeypatch, capsys):
    out = tmp_path / "report"
    assert main(["compare", str(exports), "--out", str(out), "--sort", "test_accuracy",
                 "--data-dir", data_dir]) == 0
    printed = capsys.readouterr().out
    assert "dataset: digits (2 runs, sorted by test_accuracy, best first)" in printed
    assert "clean_gap" in printed and "latency_ms" in printed
    with open(out / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["dataset"] for row in rows) == ["digits", "digits", "synthetic"]
    assert {"run", "placement", "test_accuracy", "clean_gap", "reported_gap", "size_kb", "latency_ms"} <= set(rows[0])
    markdown = (out / "compare.md").read_text()
    assert "## digits" in markdown and "## synthetic" in markdown
    for name in ("clean_gap_curves-digits.png", "accuracy_vs_gap-digits.png", "train_val_curves-digits.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
        assert f"({name})" in markdown

    # A shell glob passes every entry (README.md included); the default output folder is ./compare.
    monkeypatch.chdir(tmp_path)
    paths = [str(p) for p in sorted(exports.iterdir())]
    assert main(["compare", *paths, "--no-plots", "--data-dir", data_dir]) == 0
    assert sorted(p.name for p in (tmp_path / "compare").iterdir()) == ["compare.csv", "compare.md"]


def test_cli_compare_errors(exports, tmp_path, capsys):
    assert main(["compare", str(exports), "--sort", "bogus"]) == 2
    error = capsys.readouterr().err
    assert "Received: sort='bogus'" in error and "clean_gap" in error and "test_accuracy" in error

    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "No kerasreg exports found in" in capsys.readouterr().err

    assert main(["compare", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err

    tampered = shutil.copytree(next(p for p in exports.iterdir() if p.is_dir()), tmp_path / "tampered")
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["metrics"]["clean_gap_accuracy"] = -1.0
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    assert main(["compare", str(tampered)]) == 2
    assert "manifest.json was modified" in capsys.readouterr().err


def test_cli_compare_names_every_bad_export_and_skip_invalid_compares_the_rest(exports, data_dir, tmp_path, capsys):
    good, *others = [p for p in sorted(exports.iterdir()) if p.is_dir()]
    folder = tmp_path / "exports"
    shutil.copytree(good, folder / good.name)
    edited = shutil.copytree(others[0], folder / "edited")
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["metrics"]["clean_gap_accuracy"] = -1.0
    (edited / "manifest.json").write_text(json.dumps(manifest))
    truncated = shutil.copytree(others[0], folder / "truncated")
    (truncated / "model.keras").write_bytes((truncated / "model.keras").read_bytes()[:100])
    command = ["compare", str(folder), "--no-plots", "--data-dir", data_dir, "--out", str(tmp_path / "out")]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "2 of 3 exports failed verification" in err and "--skip-invalid" in err
    assert f"{edited}: " in err and f"{truncated}: " in err and "model.keras" in err
    assert not (tmp_path / "out").exists()
    assert main([*command, "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert f"skipped (failed verification): {edited}: " in captured.err
    assert f"skipped (failed verification): {truncated}: " in captured.err
    assert good.name in captured.out and "edited" not in captured.out
