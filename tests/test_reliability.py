"""Faults through the command line: each failure class of issue 21 with the real fault.

A kill mid-run with early stopping resumes to the uninterrupted run's
numbers; the other classes (interrupts, I/O failures, damaged datasets,
hostile study files) end with one message naming what failed and what to do.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import pytest
from helpers import run_python, with_default_sigint

import kerasreg
from kerasreg import cli

# Stops after 8 of 12 epochs at this learning rate (placement none): a kill at the
# fifth checkpoint write lands while early stopping is watching.
PATIENT = ["--widths", "16", "--epochs", "12", "--patience", "1", "--learning-rate", "0.03",
           "--batch-size", "200", "--quiet"]
STUDY = """placements = ["none"]
seeds = [0]
epochs = 12
patience = 1
learning_rate = 0.03
batch_size = 200
options = {widths = [16]}
arms = []
"""

# `kerasreg` in a fresh process that SIGKILLs itself as checkpoint write argv[1] begins.
KILLED_AT_WRITE = """
import os, signal, sys
import kerasreg
from kerasreg import cli
from kerasreg.training import checkpoint
writes, write_atomic = [], checkpoint.write_atomic
def killed_at_write(path, data):
    writes.append(path)
    if len(writes) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    write_atomic(path, data)
checkpoint.write_atomic = killed_at_write
sys.exit(cli.main(sys.argv[2:]))
"""


def manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    assert cli.main(["train", *PATIENT, "--placement", "none", "--out", str(out), "--name", "run"]) == 0
    return manifest(out / "run")


def same_numbers(resumed, straight):
    resumed, straight = resumed["metrics"], straight["metrics"]
    assert resumed["epochs_run"] == straight["epochs_run"] < 12  # early stopping ended both
    for key in set(straight) - {"epoch_time_total"}:
        assert resumed[key] == straight[key], key


@pytest.mark.parity
def test_sigkill_mid_run_with_patience_resumes_to_the_uninterrupted_numbers(uninterrupted, tmp_path):
    command = ["train", *PATIENT, "--placement", "none", "--out", str(tmp_path), "--name", "run"]
    killed = run_python(KILLED_AT_WRITE, 5, *command, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "run").exists()
    assert cli.main([*command, "--resume"]) == 0
    same_numbers(manifest(tmp_path / "run"), uninterrupted)


def test_sigkill_mid_study_with_patience_resumes_to_the_uninterrupted_numbers(uninterrupted, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(STUDY.replace("arms = []\n", ""))
    command = ["study", "--config", str(study), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]
    killed = run_python(KILLED_AT_WRITE, 5, *command, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert cli.main([*command, "--resume"]) == 0
    (run,) = (tmp_path / "out" / "runs").glob("mlp-none-*")
    same_numbers(manifest(run), uninterrupted)
    assert not (tmp_path / "out" / "failures.jsonl").read_text()


@pytest.mark.parametrize("text, message", [
    ("seeds = [0, 0]\n", r"field `seeds`: value\(s\) 0 given more than once.*Received: seeds=\[0, 0\]"),
    ('placements = ["none", "ic", "none"]\n', r"field `placements`: value\(s\) 'none' given more than once"),
    ("rates = [0.2, 0.2]\n", r"field `rates`: value\(s\) 0.2 given more than once"),
    ('[[arms]]\nname = "a"\nseeds = [1, 1]\n', r"arm 'a', for field `seeds`: value\(s\) 1 given more than once"),
    ('[[arms]]\nname = "a"\n[[arms]]\nname = "a"\nseeds = [1]\n', r"field `arms`: arm name\(s\) 'a' given more"),
    ('placements = ["none"]\n[[arms]]\nplacements = ["ic"]\n[[arms]]\nplacements = ["dropout"]\n',
     r"Top-level field\(s\) `placements` .* set by every arm as well, so they would never be trained"),
    ('options = {widths = "x"}\n', r"field `options`: .*argument `widths` of model 'mlp'.*Received: widths='x'"),
    ('models = ["resnet_small"]\noptions = {stages = "three"}\n',
     r"field `options`: .*argument `stages`.*Received: stages='three'"),
    ('models = ["mlp", "resnet_small"]\noptions = {stages = 1}\n',
     r"field `options`: Unknown option\(s\) stages for model 'mlp'. Valid options: widths."),
])
def test_hostile_study_files_are_refused_naming_the_field(tmp_path, capsys, text, message):
    study = tmp_path / "hostile.toml"
    study.write_text(text)
    assert cli.main(["study", "--config", str(study), "--out", str(tmp_path / "out")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_top_level_grid_fields_beside_arms_are_the_defaults_of_the_arms_that_do_not_set_them(tmp_path):
    study = tmp_path / "arms.toml"
    study.write_text('placements = ["none"]\nseeds = [3]\nepochs = 2\n'
                     '[[arms]]\nname = "own"\nplacements = ["ic"]\n[[arms]]\nname = "default"\n')
    config = kerasreg.StudyConfig.from_toml(study)
    assert [c.run_name() for c in config.runs()] == ["mlp-ic-standard0.2-seed3", "mlp-none-nodrop-seed3"]
    assert all(c.epochs == 2 for c in config.runs())


def damaged_copy(data_dir, tmp_path, damage):
    """A copy of the prepared mnist1d with its train record file truncated or one byte flipped."""
    kerasreg.load_dataset("mnist1d")  # prepared in the session's data directory
    damaged = tmp_path / "data"
    shutil.copytree(pathlib.Path(data_dir) / "mnist1d", damaged / "mnist1d")
    (record,) = damaged.glob("mnist1d/*/mnist1d-train.tfrecord-*")
    data = bytearray(record.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2 + 50]
    else:
        data[len(data) // 2] ^= 0xFF
    record.write_bytes(bytes(data))
    return damaged, record


@pytest.mark.parametrize("damage, reason", [("truncated", "truncated record"), ("flipped byte", "corrupted record")])
def test_a_damaged_prepared_dataset_is_named_with_its_file(tmp_path, data_dir, capsys, damage, reason):
    damaged, record = damaged_copy(data_dir, tmp_path, damage)
    command = ["train", "--widths", "8", "--epochs", "1", "--quiet", "--data-dir", str(damaged), "--out", str(tmp_path)]
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert f"Dataset 'mnist1d' in {damaged} is damaged ({record}: unreadable after record 2000: {reason}" in err
    assert "rebuild it with `--rebuild-data`" in err
    assert not [p for p in tmp_path.iterdir() if p.name != "data"]


def test_rebuild_data_regenerates_a_damaged_built_in_dataset(tmp_path, data_dir, capsys):
    damaged, _ = damaged_copy(data_dir, tmp_path, "truncated")
    command = ["train", "--widths", "8", "--epochs", "1", "--quiet", "--data-dir", str(damaged), "--out", str(tmp_path)]
    assert cli.main([*command, "--rebuild-data"]) == 0
    assert "rebuild" in capsys.readouterr().err
    # Never trained on less data: the rebuilt dataset is the intact one.
    rebuilt, intact = kerasreg.load_dataset("mnist1d", data_dir=damaged), kerasreg.load_dataset("mnist1d")
    for split in ("train", "val", "test"):
        for a, b in zip(rebuilt.as_numpy(split), intact.as_numpy(split)):
            np.testing.assert_array_equal(a, b)


HOLD_STUDY_LOCK = """
import sys, time
from kerasreg.study.lock import study_lock
with study_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""

# `kerasreg study` in a fresh process, reporting whether Keras was imported before it returned.
STUDY_AND_IMPORTS = """
import sys
from kerasreg import cli
code = cli.main(sys.argv[1:])
print("keras imported:", "keras" in sys.modules)
sys.exit(code)
"""


def test_a_second_study_into_the_same_folder_is_refused_before_any_import(tmp_path):
    out = tmp_path / "study"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_STUDY_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        second = run_python(STUDY_AND_IMPORTS, "study", "--out", out, check=False)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2, second.stderr
    assert f"is being written by pid {holder.pid}" in second.stderr
    assert "another --out" in second.stderr and "--name" not in second.stderr
    assert "keras imported: False" in second.stdout


def test_train_warns_when_the_model_does_not_output_probabilities():
    data = kerasreg.load_dataset("mnist1d")
    logits = keras.Sequential([keras.Input(data.input_shape), keras.layers.Dense(data.num_classes)])
    with pytest.warns(UserWarning, match=r"does not output probabilities.*End the model with a softmax"):
        kerasreg.train(logits, data, epochs=1, verbose=0)
    softmax = kerasreg.build_model("mlp", widths=(8,), input_shape=data.input_shape, num_classes=data.num_classes)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*probabilities.*")
        kerasreg.train(softmax, data, epochs=1, verbose=0)


# `kerasreg` in a fresh process whose files may grow to argv[1] bytes at most (RLIMIT_FSIZE).
SIZE_LIMITED = """
import resource, sys
from kerasreg import cli
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(cli.main(sys.argv[2:]))
"""


def _size_limited(limit, command):
    # JAX writes a compilation-cache entry in place: one cut short by the limit would stay truncated in the cache the
    # suite's processes share, and every later process compiling the same step would warn on reading it. Without
    # the cache each compiles afresh: quickly, with XLA's optimizations off, for runs that end within two epochs.
    return run_python(SIZE_LIMITED, limit, *command, check=False,
                      env={"KERASREG_CACHE_DIR": "off", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"})


def test_a_file_size_limit_hit_while_checkpointing_names_the_file(tmp_path):
    kerasreg.load_dataset("mnist1d")  # prepared beforehand (its record file is over the limit too)
    # The checkpoint (weights and Adam's two moments, ~2 MB) is the run's first file over 300 kB.
    command = ["train", "--widths", "400,400", "--epochs", "2", "--quiet", "--out", tmp_path, "--name", "run"]
    limited = _size_limited(300_000, command)
    assert limited.returncode == 2, limited.stderr
    checkpoint = tmp_path / ".work" / "run" / "backup" / "checkpoint-a.bin"
    assert f"kerasreg train: error: cannot write {checkpoint}: File too large; the file-size limit was reached" \
        in limited.stderr
    assert "Traceback" not in limited.stderr and not (tmp_path / "run").exists()


def test_a_file_size_limit_hit_inside_the_export_worker_names_the_savedmodel(tmp_path):
    kerasreg.load_dataset("mnist1d")
    # A two-unit MLP: its checkpoint and model.keras (~35 kB) fit under 45 kB, the SavedModel's graph
    # (~56 kB), written by the TensorFlow export worker, does not.
    command = ["train", "--widths", "2", "--epochs", "1", "--quiet", "--out", tmp_path, "--name", "run"]
    limited = _size_limited(45_000, command)
    assert limited.returncode == 2, limited.stderr
    assert re.search(r"kerasreg train: error: cannot write \S+/\.run\.tmp-[^/]+/saved_model\S*: File too large",
                     limited.stderr), limited.stderr
    assert "Traceback" not in limited.stderr and "unexpected error" not in limited.stderr
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.tmp-*")), "nothing half-written"


def test_a_file_size_limit_hit_while_preparing_the_dataset_names_its_folder(tmp_path):
    command = ["train", "--epochs", "1", "--quiet", "--out", tmp_path / "out", "--data-dir", tmp_path / "data"]
    limited = _size_limited(300_000, command)
    assert limited.returncode == 2, limited.stderr
    assert f"cannot write {tmp_path / 'data' / 'mnist1d'}: File too large" in limited.stderr


def test_a_data_directory_under_a_regular_file_is_named(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder\n")
    command = ["train", "--epochs", "1", "--quiet", "--data-dir", str(tmp_path / "file" / "data"),
               "--out", str(tmp_path / "out")]
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "file") in err and "not a directory" in err.lower()


def _interrupt_once_training(command, folder, pattern, signum):
    """Start `command` in a process group of its own (as a terminal does), signal the group once a run has
    finished an epoch (`folder.glob(pattern)`); returns the process and its stderr."""
    proc = subprocess.Popen(with_default_sigint(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None and not list(folder.glob(pattern)):
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, err


@pytest.fixture
def sigint_ignored():
    """The test process ignores SIGINT while the test runs, as a suite started by `nohup` or `cmd &` does."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, previous)


def _lines(text):
    return [line for line in text.splitlines() if line.strip()]


def _interrupted(command, name):
    return (f"kerasreg {command}: interrupted ({name}); workers stopped, nothing half-written. "
            "Run the same command with --resume to continue.")


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupted_study_stops_its_workers_says_one_line_and_leaves_nothing_behind(
        tmp_path, signum, code, name, sigint_ignored):
    study = tmp_path / "study.toml"
    study.write_text('placements = ["none", "dropout", "bn_before_act"]\nseeds = [0]\nepochs = 200\n'
                     "options = {widths = [16]}\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kerasreg", "study", "--config", study, "--out", out, "--workers", "2", "--quiet"]
    proc, err = _interrupt_once_training(command, out / "runs" / ".work", "*/history.csv", signum)
    assert proc.returncode == code, err
    assert _lines(err) == [_interrupted("study", name)], err
    deadline = time.monotonic() + 30  # a killed worker stays a zombie until init reaps it
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "a worker of the study outlived it"
    assert not list((out / "runs").glob(".*.tmp-*")) and not list(out.glob(".lock*"))


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupted_train_says_one_line_releases_its_lock_and_keeps_its_work(tmp_path, signum, code, name,
                                                                                 sigint_ignored):
    kerasreg.load_dataset("mnist1d")  # prepared beforehand: its one progress line is not the interrupt's
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kerasreg", "train", "--widths", "16", "--epochs", "400", "--quiet",
               "--out", out, "--name", "run"]
    proc, err = _interrupt_once_training(command, out, ".work/run/history.csv", signum)
    assert proc.returncode == code, err
    assert _lines(err) == [_interrupted("train", name)], err
    assert not (out / "run").exists() and not list(out.glob(".run.tmp-*")) and not list(out.glob(".work/*.lock*"))
    assert (out / ".work" / "run" / "history.csv").exists(), "the work directory is kept for --resume"


INTERRUPTED_INSIDE_GC = """
import gc, os, signal, sys
from kerasreg import cli
sent = []
def interrupt_inside_gc(phase, info):
    # Python ignores an exception raised here (JAX registers such a callback): the interrupt must not be lost.
    if phase == "start" and not sent and sys.unraisablehook is not sys.__unraisablehook__:  # the command runs
        sent.append(True)
        os.kill(os.getpid(), signal.SIGINT)
gc.callbacks.append(interrupt_inside_gc)
sys.exit(cli.main(sys.argv[1:]))
"""


def test_ctrl_c_swallowed_inside_a_garbage_collection_callback_still_interrupts(tmp_path, sigint_ignored):
    command = ["train", "--widths", "2", "--epochs", "400", "--quiet", "--out", tmp_path, "--name", "run"]
    done = run_python(INTERRUPTED_INSIDE_GC, *command, check=False)
    assert done.returncode == 130, done.stderr
    assert _lines(done.stderr) == [_interrupted("train", "SIGINT")], done.stderr


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_later_study_removes_the_hidden_exports_of_a_killed_one(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    runs = tmp_path / "out" / "runs"
    killed = runs / f".mlp-none-nodrop-seed0.tmp-{int(dead.stdout)}-0a1b2c3d"
    live = runs / f".mlp-ic-standard0.2-seed0.tmp-{os.getpid()}-0a1b2c3d"
    for folder in (killed, live):
        (folder / "saved_model").mkdir(parents=True)
    study = tmp_path / "study.toml"
    study.write_text('placements = ["none"]\nseeds = [0]\nepochs = 1\noptions = {widths = [8]}\n')
    assert cli.main(["study", "--config", str(study), "--out", str(tmp_path / "out"), "--workers", "1",
                     "--quiet"]) == 0
    assert not killed.exists() and live.exists()
    assert (runs / "mlp-none-nodrop-seed0" / "manifest.json").exists()
