"""Every failure is a message and an exit code: 2 for bad input or environment, 1 for a failed run or a bug.

One test per failure class met as a user: bad locations, bad names, bad
files, absurd sizes, data that does not fit the model, a closed pipe, and
an unexpected error (short message, traceback only with `--debug`).
"""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import kerasreg
from kerasreg import cli, runs

TRAIN = ["train", "--widths", "8", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def mnist1d():
    return kerasreg.load_dataset("mnist1d")


@pytest.mark.parametrize("where", ["file", "below a file", "unwritable"])
def test_out_that_is_not_a_writable_directory_exits_2_before_any_work(tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out = {"file": blocker, "below a file": blocker / "out", "unwritable": "/sys/kerasreg-out"}[where]
    assert cli.main([*TRAIN, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Invalid value received for argument `out`" in err and str(out) in err
    assert "Traceback" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_data_dir_that_is_a_file_exits_2_naming_it(tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.write_text("")
    assert cli.main([*TRAIN, "--data-dir", str(data_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "argument `data_dir`" in err and str(data_dir) in err
    assert not (tmp_path / "out").exists()


def test_config_file_that_is_not_utf8_is_named(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_bytes(b"placement = '\xff\xfe'\n")
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{config} is not UTF-8" in err and not (tmp_path / "out").exists()


def test_name_that_is_not_utf8_exits_2_and_leaves_nothing(tmp_path, capsys):
    name = os.fsdecode(b"run\xff")  # how undecodable command-line bytes reach Python
    assert cli.main([*TRAIN, "--name", name, "--out", str(tmp_path)]) == 2
    assert "Invalid value received for argument `name`" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_absurd_widths_are_rejected_before_any_allocation(capsys):
    args = ["build", "mlp", "--input-shape", "40", "--num-classes", "10", "--widths", "1000000000000"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "argument `widths`" in err and "1 GiB" in err and "1000000000000" in err
    with pytest.raises(ValueError, match=r"argument `widths`.*positive ints.*Received: widths='abc'"):
        kerasreg.build_model("mlp", input_shape=(40,), num_classes=10, widths="abc")


def test_model_with_another_class_count_is_refused_by_train(mnist1d):
    model = kerasreg.build_model("mlp", widths=(8,), input_shape=mnist1d.input_shape, num_classes=3)
    with pytest.raises(ValueError, match=r"outputs 3 classes but dataset 'mnist1d' has 10.*num_classes=10"):
        kerasreg.train(model, mnist1d, epochs=1, verbose=0)
    assert not model.compiled


@pytest.mark.parametrize("split, change, match", [
    ("train", lambda x, y: (x, np.where(np.arange(len(y)) == 5, 10, y)), r"labels outside \[0, 10\).*train"),
    ("test", lambda x, y: (x, y - 1), r"labels outside \[0, 10\) in its test split \(found -1"),
    ("val", lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y),
     r"1 NaN or infinite input values in its val split"),
])
def test_data_that_would_give_a_graph_error_or_nan_metrics_is_refused(mnist1d, split, change, match):
    x, y = change(*mnist1d.as_numpy(split))
    broken = dataclasses.replace(mnist1d, **{f"x_{split}": x.astype("float32"), f"y_{split}": y})
    model = kerasreg.build_model("mlp", widths=(8,), input_shape=mnist1d.input_shape, num_classes=10)
    with pytest.raises(ValueError, match=match):
        kerasreg.train(model, broken, epochs=1, verbose=0)


def test_closed_pipe_is_a_message_not_a_traceback():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "kerasreg", "list"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader went away, as with `kerasreg list | head -0`
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert "broken pipe" in err and "Traceback" not in err and "Exception ignored" not in err


def test_unexpected_error_is_short_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    def broken_run(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(runs, "run", broken_run)
    assert cli.main([*TRAIN, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unexpected error: KeyError: 'internal'" in err and "--debug" in err
    with pytest.raises(KeyError, match="internal"):
        cli.main([*TRAIN, "--out", str(tmp_path), "--debug"])

