"""The training checkpoint: a kill or a fault at any step of its write, corruption, and config changes.

A resumed run must equal the uninterrupted one or fail with a clear error;
never continue silently from a mixed state.
"""

import json
import shutil
import threading

import keras
import numpy as np
import pytest
from helpers import watch_atomic_writes

import kerasreg
from kerasreg import cli, runs, training
from kerasreg.training import checkpoint

EPOCHS = 3
SETTINGS = dict(epochs=EPOCHS, batch_size=200, seed=0, verbose=0)

# Each step of a checkpoint write at which a kill is tested: (step, write number, epochs a resume finds).
KILL_POINTS = [
    ("partial", 1, 0),  # the very first checkpoint half written: start again from scratch
    ("begin", 2, 1),
    ("partial", 2, 1),
    ("written", 2, 1),  # written but not fsynced
    ("synced", 2, 1),  # fsynced but not renamed into its slot
    ("replaced", 2, 2),  # in its slot, directory not yet fsynced
    ("partial", 3, 2),  # overwriting the older slot while the newer one stays intact
]


class Fault(Exception):
    """Raised in-process at a step of a write (the files are left as a kill would leave them)."""


@pytest.fixture(scope="module")
def mnist1d():
    return kerasreg.load_dataset("mnist1d")


def fresh_model(dataset, seed=0):
    training.seed_everything(seed)
    return kerasreg.build_model("mlp", widths=(32, 32), input_shape=dataset.input_shape,
                                num_classes=dataset.num_classes, seed=seed)


def counting_writes(action):
    """An action for `watch_atomic_writes` calling `action(step, write)` at each step of a checkpoint write.

    `write` counts the checkpoint writes from 1; the run's other files are not counted.
    """
    writes = 0

    def watch(step, target):
        nonlocal writes
        if target.name.startswith("checkpoint-"):
            writes += step == "begin"
            action(step, writes)

    return watch


@pytest.fixture(scope="module")
def straight_run(mnist1d, tmp_path_factory):
    """The uninterrupted run, and a copy of its run folder at each of `KILL_POINTS` by (step, write).

    A SIGKILL runs no handler and leaves the files as they are on disk at that instant, so a copy taken there is
    what the kill leaves: one run stands for every kill point (the real SIGKILL, through the command line, is in
    test_reliability.py).
    """
    run_dir, copies = tmp_path_factory.mktemp("straight"), tmp_path_factory.mktemp("killed")
    wanted, kill_points = {(step, write) for step, write, _ in KILL_POINTS}, {}

    def copy_at(step, write):
        if (step, write) in wanted:
            kill_points[step, write] = shutil.copytree(run_dir, copies / f"{step}-{write}")

    with pytest.MonkeyPatch.context() as monkeypatch:
        watch_atomic_writes(monkeypatch, counting_writes(copy_at))
        result = kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, **SETTINGS)
    return result, kill_points


@pytest.fixture(scope="module")
def uninterrupted(straight_run):
    return straight_run[0]


@pytest.fixture
def fail_at(monkeypatch):
    """`fail_at(step, write)`: raise `Fault` once, at `step` of the `write`-th checkpoint write."""

    def arm(step, write):
        armed = True

        def fault(at_step, at_write):
            nonlocal armed
            if armed and (at_step, at_write) == (step, write):
                armed = False  # the resume that follows in the same test writes undisturbed
                raise Fault(f"{step} of write {write}")

        watch_atomic_writes(monkeypatch, counting_writes(fault))

    return arm


def interrupted(dataset, run_dir, fail_at, write, step="begin"):
    """Train into `run_dir` until a fault at `step` of checkpoint write `write`."""
    fail_at(step, write)
    with pytest.raises(Fault):
        kerasreg.train(fresh_model(dataset), dataset, run_dir=run_dir, **SETTINGS)


def assert_same_run(resumed, straight):
    for a, b in zip(resumed.model.get_weights(), straight.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.test_metrics == straight.test_metrics
    for key in set(straight.history) - {"epoch_time"}:
        assert resumed.history[key] == straight.history[key], key


@pytest.mark.parametrize("step, write, resumes_from", KILL_POINTS)
def test_a_kill_at_every_step_of_the_checkpoint_write_resumes_to_the_uninterrupted_run(
        mnist1d, straight_run, tmp_path, step, write, resumes_from):
    uninterrupted, kill_points = straight_run
    run_dir = shutil.copytree(kill_points[step, write], tmp_path / "run")
    assert training.RunDir(run_dir).completed_epochs() == resumes_from
    resumed = kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, resume=True, **SETTINGS)
    assert_same_run(resumed, uninterrupted)


def test_the_next_epoch_trains_while_the_last_checkpoint_is_written(mnist1d, tmp_path, monkeypatch):
    next_epoch, waited = threading.Event(), []

    def hold_the_first_write(step, write):
        if (step, write) == ("written", 1):
            waited.append(next_epoch.wait(timeout=60))  # a write in the training thread would wait in vain

    watch_atomic_writes(monkeypatch, counting_writes(hold_the_first_write))
    signal = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epoch == 1 and next_epoch.set())
    kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=tmp_path / "run", callbacks=[signal], **SETTINGS)
    assert waited == [True]
    assert training.RunDir(tmp_path / "run").completed_epochs() == 0  # a finished run keeps no checkpoint


def test_an_error_ending_training_waits_for_the_checkpoint_in_flight(mnist1d, tmp_path, monkeypatch):
    raised, returned, landed_after_return = threading.Event(), threading.Event(), []

    def hold_the_second_write(step, write):
        if (step, write) == ("written", 2):
            raised.wait(timeout=60)
            # train() must not return while this write is held; a second is ample for one that does not wait.
            landed_after_return.append(returned.wait(timeout=1))

    def fail_in_the_third_epoch(epoch, logs):
        if epoch == 2:
            raised.set()
            raise Fault("third epoch")

    watch_atomic_writes(monkeypatch, counting_writes(hold_the_second_write))
    failing = keras.callbacks.LambdaCallback(on_epoch_begin=fail_in_the_third_epoch)
    with pytest.raises(Fault):
        kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=tmp_path / "run", callbacks=[failing], **SETTINGS)
    returned.set()
    assert landed_after_return == [False]
    assert training.RunDir(tmp_path / "run").completed_epochs() == 2
    assert sorted(path.name for path in (tmp_path / "run" / "backup").iterdir()) == [
        "checkpoint-a.bin", "checkpoint-b.bin"]


@pytest.mark.parametrize("damage", ["empty", "truncated", "flipped byte"])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(
        mnist1d, uninterrupted, tmp_path, fail_at, capsys, damage):
    run_dir = tmp_path / "run"
    interrupted(mnist1d, run_dir, fail_at, write=3)
    newest = checkpoint.slot_path(run_dir / "backup", "b")
    data = newest.read_bytes()
    if damage == "empty":  # what a full disk left behind in 0.1
        data = b""
    elif damage == "truncated":
        data = data[: len(data) // 3]
    else:
        data = data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:]
    newest.write_bytes(data)
    capsys.readouterr()
    resumed = kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, resume=True, **SETTINGS)
    err = capsys.readouterr().err
    assert "Skipped a bad checkpoint: checkpoint-b.bin" in err and "resuming from epoch 1" in err
    assert_same_run(resumed, uninterrupted)


def test_no_valid_checkpoint_fails_clearly_and_changes_nothing(mnist1d, tmp_path, fail_at):
    run_dir = tmp_path / "run"
    interrupted(mnist1d, run_dir, fail_at, write=3)
    for slot in checkpoint.SLOTS:
        checkpoint.slot_path(run_dir / "backup", slot).write_bytes(b"\0" * 64)
    history = (run_dir / "history.csv").read_text()
    with pytest.raises(training.CheckpointError, match=r"No valid checkpoint.*checkpoint-a.bin.*without resume"):
        kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, resume=True, **SETTINGS)
    assert (run_dir / "history.csv").read_text() == history


def test_checkpoint_of_another_architecture_is_refused(mnist1d, tmp_path, fail_at):
    run_dir = tmp_path / "run"
    interrupted(mnist1d, run_dir, fail_at, write=2)
    (run_dir / "run_config.json").unlink()  # as in a run directory from before run_config.json
    other = kerasreg.build_model("mlp", widths=(16,), input_shape=mnist1d.input_shape,
                                 num_classes=mnist1d.num_classes, seed=0)
    with pytest.raises(training.CheckpointError, match="do not fit this model"):
        kerasreg.train(other, mnist1d, run_dir=run_dir, resume=True, **SETTINGS)


def test_resume_with_another_configuration_names_every_difference(mnist1d, tmp_path, fail_at):
    run_dir = tmp_path / "run"
    interrupted(mnist1d, run_dir, fail_at, write=2)
    config = json.loads((run_dir / "run_config.json").read_text())
    assert config["seed"] == 0 and config["epochs"] == EPOCHS and config["model"]["dropout_rate"] == 0.2
    before = {p.name: p.read_bytes() for p in (run_dir / "backup").iterdir()}
    model = kerasreg.build_model("mlp", widths=(32, 32), input_shape=mnist1d.input_shape,
                                 num_classes=mnist1d.num_classes, seed=1, dropout_rate=0.3)
    with pytest.raises(training.ResumeMismatchError) as excinfo:
        kerasreg.train(model, mnist1d, run_dir=run_dir, resume=True, **{**SETTINGS, "seed": 1, "epochs": 2})
    message = str(excinfo.value)
    for field in ("epochs: 3 -> 2", "seed: 0 -> 1", "model.seed: 0 -> 1", "model.dropout_rate: 0.2 -> 0.3"):
        assert field in message
    assert {p.name: p.read_bytes() for p in (run_dir / "backup").iterdir()} == before


def test_cli_resume_with_another_seed_exits_2_naming_it(tmp_path, fail_at, capsys):
    args = ["train", "--widths", "16", "--epochs", "3", "--name", "run", "--out", str(tmp_path), "--quiet"]
    fail_at("begin", 2)
    assert cli.main(args) == 1  # not a known error: a short message and a pointer to --debug
    capsys.readouterr()
    assert cli.main([*args, "--resume", "--seed", "1", "--dropout-rate", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "seed: 0 -> 1" in err and "dropout_rate: 0.2 -> 0.5" in err
    assert not (tmp_path / "run").exists()
    assert cli.main([*args, "--resume"]) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["training"]["epochs_run"] == 3 and not (tmp_path / runs.WORK_DIR / "run").exists()


def stoppers():
    """kerasreg's early stopping callbacks, set to stop after the third of five epochs."""
    return [
        # Training loss falls every epoch, so in mode "max" the first epoch stays the best.
        training.ResumableEarlyStopping(monitor="loss", mode="max", patience=2, restore_best_weights=True),
        # Training accuracy rises every epoch: it "grew" for two epochs after the third.
        training.GapEarlyStopping(monitor="accuracy", patience=2, best_metric="val_loss", verbose=0),
    ]


@pytest.fixture(scope="module")
def stopped_early(mnist1d, tmp_path_factory):
    return kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=tmp_path_factory.mktemp("stopped"),
                          callbacks=stoppers(), **{**SETTINGS, "epochs": 5})


@pytest.mark.parametrize("write, step", [
    (2, "begin"),  # watching: best weights of epoch 1, patience count 1
    (3, "replaced"),  # the stopping epoch checkpointed, the run not yet saved
])
def test_resume_with_early_stopping_ends_as_the_uninterrupted_run(
        mnist1d, stopped_early, tmp_path, fail_at, write, step):
    assert stopped_early.config["epochs_run"] == 3 and stopped_early.config["best_epoch"] == 1
    run_dir = tmp_path / "run"
    fail_at(step, write)
    with pytest.raises(Fault):
        kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, callbacks=stoppers(),
                       **{**SETTINGS, "epochs": 5})
    callbacks = stoppers()
    resumed = kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, resume=True, callbacks=callbacks,
                             **{**SETTINGS, "epochs": 5})
    assert_same_run(resumed, stopped_early)
    assert resumed.config == stopped_early.config
    assert callbacks[0].stopped_epoch == 2 and callbacks[1].stopped_epoch == 2


class EpochCounter(keras.callbacks.Callback):
    """A user's callback with state across epochs."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1


class ResumableEpochCounter(EpochCounter):
    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def test_resume_with_a_users_stateful_callback_is_refused_with_advice_that_works(mnist1d, tmp_path, fail_at):
    run_dir = tmp_path / "run"
    fail_at("begin", 2)
    with pytest.raises(Fault):
        kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, callbacks=[EpochCounter()], **SETTINGS)
    history = (run_dir / "history.csv").read_text()
    with pytest.raises(training.ResumeMismatchError,
                       match=r"not in the checkpoint \(EpochCounter\).*over without resume.*state_dict"):
        kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, resume=True,
                       callbacks=[EpochCounter()], **SETTINGS)
    assert (run_dir / "history.csv").read_text() == history
    # The advice: a callback that hands its state to the checkpoint resumes with the run.
    fail_at("begin", 2)
    with pytest.raises(Fault):
        kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, callbacks=[ResumableEpochCounter()],
                       **SETTINGS)
    counter = ResumableEpochCounter()
    kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, resume=True, callbacks=[counter], **SETTINGS)
    assert counter.seen == EPOCHS


def test_a_checkpoint_without_the_callbacks_state_is_refused(mnist1d, tmp_path, fail_at):
    run_dir = tmp_path / "run"
    interrupted(mnist1d, run_dir, fail_at, write=2)
    (run_dir / "run_config.json").unlink()
    with pytest.raises(training.CheckpointError, match=r"holds the state of callbacks none.*ResumableEpochCounter"):
        kerasreg.train(fresh_model(mnist1d), mnist1d, run_dir=run_dir, resume=True,
                       callbacks=[ResumableEpochCounter()], **SETTINGS)
