"""Distributed tuning on KerasTuner's chief/worker mode: a chief and two workers on 127.0.0.1, one killed mid-trial."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

import kerasreg
from kerasreg import cli

TUNE_TOML = """model = "mlp"
placements = ["bn_before_act", "bn_act_drop", "dropout"]
rates = [0.1, 0.3]
options = {widths = [[16]]}
epochs = 20
max_trials = 4
best = 2
"""
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition, what, procs, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.poll() is None, f"{proc.args[-1]} exited with {proc.returncode} while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _ongoing(out, worker):
    try:
        return json.loads((out / "keras_tuner" / "oracle.json").read_text())["ongoing_trials"].get(worker)
    except (OSError, ValueError):  # not written yet, or being replaced
        return None


def _epochs_logged(out, trial):
    history = out / "keras_tuner" / f"trial_{trial}" / "run" / "history.csv"
    return history.read_text().count("\n") - 1 if history.exists() else 0


@pytest.mark.slow
def test_a_chief_and_two_workers_finish_every_trial_once_even_when_a_worker_dies(tmp_path):
    config = tmp_path / "tune.toml"
    config.write_text(TUNE_TOML)
    out = tmp_path / "tune"
    port = _free_port()
    base = [sys.executable, "-m", "kerasreg", "tune", "--config", str(config), "--out", str(out), "--quiet"]

    def start(*role):
        return subprocess.Popen([*base, *role], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)

    procs = []
    try:
        chief = start("--chief", f"127.0.0.1:{port}")
        procs.append(chief)
        _wait(lambda: _listening(port), "the chief to listen", procs)
        workers = {name: start("--worker", f"127.0.0.1:{port}", "--tuner-id", name) for name in ("w0", "w1")}
        procs += workers.values()
        _wait(lambda: _ongoing(out, "w0") is not None, "w0 to get a trial", procs)
        trial = _ongoing(out, "w0")
        _wait(lambda: _epochs_logged(out, trial) >= 1, f"trial {trial} to train an epoch", procs)
        workers["w0"].kill()  # by its pid, mid-trial
        workers["w0"].wait()
        assert not (out / "keras_tuner" / f"trial_{trial}" / "run" / "result.json").exists(), "killed mid-trial"

        # The search is not lost: a worker restarted with the same id takes the trial back.
        replacement = start("--worker", f"127.0.0.1:{port}", "--tuner-id", "w0")
        procs.append(replacement)
        chief_out, chief_err = chief.communicate(timeout=300)
        assert chief.returncode == 0, chief_err
        for proc in (workers["w1"], replacement):
            proc.communicate(timeout=60)
            assert proc.returncode == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    oracle = json.loads((out / "keras_tuner" / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == ["0", "1", "2", "3"]  # every trial ended, none twice
    assert set(oracle["run_times"].values()) == {1}
    for trial_id in oracle["end_order"]:
        trial = json.loads((out / "keras_tuner" / f"trial_{trial_id}" / "trial.json").read_text())
        assert trial["status"] == "COMPLETED"
    assert "## Best trials" in chief_out
    exports = sorted((out / "exports").iterdir())
    assert len(exports) == 2
    best = max((kerasreg.load(path).manifest for path in exports), key=lambda m: m["config"]["tuning"]["score"])
    assert f"| 1 | {best['config']['tuning']['trial_id']} |" in (out / "summary.md").read_text()


def test_a_worker_of_a_chief_nobody_runs_fails_within_seconds(tmp_path, capsys):
    port = _free_port()
    args = ["tune", "--out", str(tmp_path / "tune"), "--worker", f"127.0.0.1:{port}", "--quiet"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"No tuning chief listens at 127.0.0.1:{port}" in err and "waited 5 s" in err
    assert not (tmp_path / "tune").exists()


def test_a_worker_of_a_chief_that_accepts_but_never_answers_fails_within_seconds(tmp_path, capsys):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never writes
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        args = ["tune", "--out", str(tmp_path / "tune"), "--worker", f"127.0.0.1:{port}", "--quiet"]
        start = time.monotonic()
        assert cli.main(args) == 2
        assert time.monotonic() - start < 20  # KerasTuner's own first request would wait an hour
    err = capsys.readouterr().err
    assert f"The tuning chief at 127.0.0.1:{port} accepts connections but does not answer" in err
    assert not (tmp_path / "tune").exists()


def test_a_chief_that_cannot_listen_fails_and_a_bad_address_is_named(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["tune", "--out", str(tmp_path / "tune"), "--max-trials", "1", "--epochs", "1", "--quiet"]
        assert cli.main([*args, "--chief", f"127.0.0.1:{port}"]) == 2
        assert f"The tuning chief cannot listen at 127.0.0.1:{port}" in capsys.readouterr().err
    assert cli.main([*args, "--worker", "localhost"]) == 2
    assert "Expected HOST:PORT, e.g. 127.0.0.1:8000. Received: worker='localhost'" in capsys.readouterr().err
