"""One writer per run and per study folder; what a killed writer left behind is cleaned or reused."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kerasreg import _locks, cli, runs

# A process that takes a lock with kerasreg's own module (without TensorFlow),
# prints "locked" and waits to be killed.
HOLDER = """
import sys, time
from kerasreg import _locks
held = _locks.Lock(sys.argv[1], "test").acquire()
print("locked", flush=True)
time.sleep(600)
"""
TRAIN = ["train", "--widths", "16", "--epochs", "2", "--quiet"]
TINY_STUDY = 'placements = ["none"]\nseeds = [0]\nepochs = 1\nmodels = ["mlp"]\n'


@pytest.fixture
def holder():
    """`holder(lock_path)`: a live process holding that lock; SIGKILLed at teardown."""
    procs = []

    def start(lock_path):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_second_writer_of_a_run_fails_at_once_naming_the_holder(tmp_path, holder, capsys):
    proc = holder(tmp_path / runs.WORK_DIR / "run.lock")
    started = time.monotonic()
    assert cli.main([*TRAIN, "--out", str(tmp_path), "--name", "run"]) == 2
    assert time.monotonic() - started < 30  # before loading data or training
    err = capsys.readouterr().err
    assert f"pid {proc.pid} on " in err and "started " in err and "'run'" in err
    assert sorted(p.name for p in (tmp_path / runs.WORK_DIR).iterdir()) == ["run.lock", "run.lock.holder"]


def test_lock_of_a_killed_process_is_taken_over(tmp_path, holder, capsys):
    lock = tmp_path / runs.WORK_DIR / "run.lock"
    proc = holder(lock)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert str(proc.pid) in _locks.holder_path(lock).read_text()  # the dead holder's files are still there
    assert cli.main([*TRAIN, "--out", str(tmp_path), "--name", "run"]) == 0
    assert (tmp_path / "run" / "manifest.json").is_file()
    assert not (tmp_path / runs.WORK_DIR).exists()  # lock released and removed


@pytest.mark.slow
def test_two_concurrent_trains_of_one_name_leave_the_first_untouched(tmp_path, capsys):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    args = [sys.executable, "-m", "kerasreg", "train", "--widths", "16", "--epochs", "20", "--quiet",
            "--out", str(tmp_path), "--name", "run"]
    first = subprocess.Popen(args, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lock = tmp_path / runs.WORK_DIR / "run.lock"
    deadline = time.monotonic() + 120
    while not _locks.holder_path(lock).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cli.main(args[3:]) == 2  # in this process: no start-up delay, the first is still training
    assert f"pid {first.pid}" in capsys.readouterr().err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["training"]["epochs_run"] == 20 and manifest["seed"] == 0


def test_second_study_on_one_folder_exits_2(tmp_path, holder, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_STUDY)
    out = tmp_path / "study"
    proc = holder(out / ".lock")
    assert cli.main(["study", "--config", str(config), "--out", str(out), "--quiet"]) == 2
    assert f"pid {proc.pid}" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [".lock", ".lock.holder"]


def test_export_sibling_left_by_a_killed_run_is_removed_by_the_next_run(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".run.tmp-{dead.pid}-0123abcd"
    (left / "saved_model").mkdir(parents=True)
    alive = tmp_path / f".run.tmp-{os.getpid()}-0123abcd"  # a live writer's: never touched
    alive.mkdir()
    assert cli.main([*TRAIN, "--out", str(tmp_path), "--name", "run"]) == 0
    assert not left.exists() and alive.exists()


def test_work_dir_of_an_exported_run_no_longer_blocks(tmp_path, capsys):
    assert cli.main([*TRAIN, "--out", str(tmp_path), "--name", "run"]) == 0
    work = tmp_path / runs.WORK_DIR / "run"  # as a kill between export and clean-up leaves it
    work.mkdir(parents=True)
    (work / "status.json").write_text(json.dumps({"status": "completed"}))
    assert cli.main([*TRAIN, "--out", str(tmp_path), "--name", "run", "--resume"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not (tmp_path / runs.WORK_DIR).exists()
