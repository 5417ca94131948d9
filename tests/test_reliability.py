"""Faults through the command line: each failure class of issue 21 with the real fault.

A kill mid-run with early stopping resumes to the uninterrupted run's
numbers; the other classes (interrupts, I/O failures, damaged datasets,
hostile study files) end with one message naming what failed and what to do.
"""

import json
import signal

import pytest
from helpers import run_python

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
from kerasreg import cli
from kerasreg.training import checkpoint
writes = []
def hook(step):
    if step == "begin":
        writes.append(step)
        if len(writes) == int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)
checkpoint.fault_hook = hook
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
