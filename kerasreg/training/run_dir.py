"""The run directory: the one place for its files and rules (status, configuration, checkpoint, logs, resume).

```
<run_dir>/
  run_config.json    the run's full configuration, written at the start and compared on resume
  status.json        running | completed | failed, with final metrics or the reason
  backup/            two alternating checkpoint slots (see `kerasreg.training.checkpoint`)
  history.csv        per-epoch metrics and gaps (CSVLogger)
  gaps.jsonl, variance_shift.jsonl, logs/ (TensorBoard)
  model.keras        the trained model, written last
```

Every file here is replaced atomically (`kerasreg._files.write_atomic`), so a
kill at any moment leaves either the old or the new content.
"""

import csv
import json
import math
import os
import pathlib
import shutil
import sys

import keras

from kerasreg._files import fsync_dir, naming, write_atomic
from kerasreg.training import checkpoint
from kerasreg.training.epoch_callbacks import EpochScalars

STATUS = "status.json"
RUN_CONFIG = "run_config.json"
CHECKPOINT = "backup"
HISTORY = "history.csv"
MODEL_FILE = "model.keras"
JSONL_LOGS = ("gaps.jsonl", "variance_shift.jsonl")
TENSORBOARD = "logs"


class ResumeMismatchError(ValueError):
    """`resume=True` with a configuration other than the one the run started with."""


def read_history(path):
    """Per-epoch history from a `history.csv` as a dict of float lists.

    Example:

    >>> read_history("saved_models/run/history.csv")["val_accuracy"][-1]  # doctest: +SKIP
    0.93
    """
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = rows[0].keys() if rows else []
    return {c: [float(r[c]) if r[c] not in ("", None) else float("nan") for r in rows] for c in columns}


def run_config(model, dataset, **settings):
    """The configuration a resumed run must share: model, data split, training settings, backend.

    Example:

    >>> run_config(model, dataset, epochs=5, batch_size=100, optimizer="adam",
    ...            learning_rate=1e-3, seed=0)["epochs"]  # doctest: +SKIP
    5
    """
    optimizer = settings.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, str):
        settings["optimizer"] = type(optimizer).__name__.lower()
    model_config = getattr(model, "kerasreg_config", None) or {
        "keras_class": type(model).__name__, "parameters": int(model.count_params())}
    config = {
        "model": model_config,
        "dataset": getattr(dataset, "name", None),
        "validation_split": getattr(dataset, "validation_split", None),
        "split_seed": getattr(dataset, "split_seed", None),
        "standardize": getattr(dataset, "standardized", None),
        **settings,
        "backend": keras.backend.backend(),
    }
    return json.loads(json.dumps(config, default=repr))  # tuples become lists, as when read back


def config_differences(saved, current, prefix=""):
    """Fields whose values differ between two configurations, as `name: saved -> current` lines.

    Example:

    >>> config_differences({"seed": 0, "epochs": 5}, {"seed": 1, "epochs": 5})
    ['seed: 0 -> 1']
    """
    differences = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            differences.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return differences


class RunDir:
    """A run directory and its rules: what a fresh run clears, what a resume keeps.

    Args:
        path: str or path. The directory, created if missing.

    Example:

    >>> run_dir = RunDir("/tmp/kerasreg_doc_run")
    >>> run_dir.start(resume=False)
    0
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self._checkpoint = None

    def start(self, *, resume, config=None, callbacks=()):
        """Prepare for training; returns the number of epochs already completed.

        A fresh run removes an old checkpoint and records `config` in
        `run_config.json`. A resumed run first compares `config` with the
        recorded one (a difference raises `ResumeMismatchError` naming every
        field, before anything is changed), then reads the newest valid
        checkpoint (a corrupt slot is skipped with a message on stderr) and
        drops the log lines of epochs after it (written just before a kill).
        Extra `callbacks` resume with the run when their state is in the
        checkpoint (`checkpoint.is_resumable`: kerasreg's early stopping
        callbacks are); any other callback could make the resumed run differ
        from an uninterrupted one, so it raises `ResumeMismatchError` too.
        """
        if resume:
            self._check_config(config)
            self.path.mkdir(parents=True, exist_ok=True)
            self._checkpoint = checkpoint.read_latest(self.path / CHECKPOINT)
            completed = self._checkpoint["epoch"] if self._checkpoint else 0
            opaque = [type(c).__name__ for c in callbacks if not checkpoint.is_resumable(c)]
            if completed and opaque:
                raise ResumeMismatchError(
                    f"Cannot resume {self.path} with callbacks whose state across epochs is not in the "
                    f"checkpoint ({', '.join(opaque)}): the resumed run could differ from an uninterrupted "
                    "one. Start the run over without resume, or give each of them `state_dict()` and "
                    "`load_state_dict(state)` methods (see `kerasreg.training.checkpoint.is_resumable`) "
                    "so that the next run can be resumed."
                )
            for message in self._checkpoint["skipped"] if self._checkpoint else ():
                print(f"Skipped a bad checkpoint: {message}; resuming from epoch {completed} "
                      f"({self._checkpoint['path'].name}).", file=sys.stderr)
            self._truncate_logs(completed)
        else:
            completed = 0
            self.path.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.path / CHECKPOINT, ignore_errors=True)
        if config is not None and (not resume or not (self.path / RUN_CONFIG).exists()):
            self.path.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path / RUN_CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
        self.write_status("running")
        return completed

    def _check_config(self, config):
        recorded = self.path / RUN_CONFIG
        if config is None or not recorded.exists():
            return
        try:
            saved = json.loads(recorded.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ResumeMismatchError(f"Cannot resume {self.path}: {RUN_CONFIG} is unreadable ({exc}).") from None
        differences = config_differences(saved, config)
        if differences:
            raise ResumeMismatchError(
                f"Cannot resume {self.path}: the configuration differs from the one the run started "
                f"with ({'; '.join(differences)}). Resume with the original settings, or start over "
                "without resume."
            )

    def completed_epochs(self):
        """Epochs finished before the newest valid checkpoint (0 without one)."""
        latest = checkpoint.read_latest(self.path / CHECKPOINT)
        return latest["epoch"] if latest else 0

    def _truncate_logs(self, epochs_done):
        history = self.path / HISTORY
        if history.exists():
            lines = history.read_text().splitlines(keepends=True)
            if len(lines) < 1 + epochs_done and epochs_done:
                raise checkpoint.CheckpointError(
                    f"Cannot resume {self.path}: {HISTORY} has {max(len(lines) - 1, 0)} epochs but the "
                    f"checkpoint has {epochs_done}. Start the run again without resume."
                )
            write_atomic(history, "".join(lines[: 1 + epochs_done]) if epochs_done else "")
        for name in JSONL_LOGS:
            path = self.path / name
            if path.exists():
                lines = path.read_text().splitlines(keepends=True)
                write_atomic(path, "".join(lines[:epochs_done]))

    @property
    def stopped(self):
        """True when the checkpoint being resumed says a callback (early stopping) had ended training."""
        return bool(self._checkpoint and self._checkpoint["stopped"])

    def callbacks(self, *, append, resumable=()):
        """The callbacks that write this directory: CSV history, TensorBoard, checkpoint (last).

        The checkpoint holds the state of the `resumable` callbacks too.
        """
        return [
            keras.callbacks.CSVLogger(str(self.path / HISTORY), append=append),
            EpochScalars(self.path / TENSORBOARD),
            EpochCheckpoint(self.path / CHECKPOINT, self._checkpoint, callbacks=resumable),
        ]

    def history(self):
        """The full per-epoch history, including epochs before a resume."""
        return read_history(self.path / HISTORY)

    def write_status(self, status, **fields):
        """Write `status.json`: `running`, `completed` (with metrics) or `failed` (with the reason)."""
        write_atomic(self.path / STATUS, json.dumps({"status": status, **fields}, indent=2))

    def finish(self, model, **fields):
        """Save the trained model, drop the checkpoint and mark the run completed.

        Saved under a temporary name first: a kill mid-save must not leave a
        broken `model.keras`.
        """
        partial = self.path / "model.partial.keras"
        with naming(self.path / MODEL_FILE):
            model.save(partial)
        os.replace(partial, self.path / MODEL_FILE)
        fsync_dir(self.path)
        shutil.rmtree(self.path / CHECKPOINT, ignore_errors=True)
        self.write_status("completed", **fields)


class EpochCheckpoint(keras.callbacks.Callback):
    """Restores a checkpoint when training begins and writes one after every completed epoch.

    Put it after every callback that writes logs for the epoch, so a
    checkpoint never claims an epoch whose log lines are missing. An epoch
    whose loss is not finite is not checkpointed (the run is failing).

    Each epoch's checkpoint is written while the next epoch trains
    (`checkpoint.write_behind`); the next epoch's end, and the end of
    training, wait for it and raise its error. So a kill finds the
    checkpoint of the last epoch or of the one before it on disk, and a
    resumed run repeats at most those epochs, with the same numbers.

    Args:
        directory: path. Where the two slots live.
        resume_from: dict or None. A checkpoint from `checkpoint.read_latest`
            to restore in `on_train_begin`. Defaults to `None`.
        callbacks: the run's other callbacks; the state of the resumable
            ones (`checkpoint.is_resumable`) is checkpointed and restored with
            the model. They must come before this one in `fit()`'s list, so
            that their `on_train_begin` resets first and their `on_epoch_end`
            state is the one saved. Defaults to `()`.

    Example:

    >>> model.fit(x, y, epochs=5, callbacks=[EpochCheckpoint("/tmp/run/backup")])  # doctest: +SKIP
    """

    def __init__(self, directory, resume_from=None, callbacks=()):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.resume_from = resume_from
        self.resumable = [c for c in callbacks if checkpoint.is_resumable(c)]
        self._latest_slot = resume_from["slot"] if resume_from else None
        self._pending = None

    def on_train_begin(self, logs=None):
        if self.resume_from is not None:
            checkpoint.restore(self.resume_from, self.model, self.resumable)

    def on_epoch_end(self, epoch, logs=None):
        self._wait()
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            return
        slot = checkpoint.SLOTS[1] if self._latest_slot == checkpoint.SLOTS[0] else checkpoint.SLOTS[0]
        self._pending = checkpoint.write_behind(self.directory, self.model, epoch + 1, slot,
                                                callbacks=self.resumable, stopped=self.model.stop_training)
        self._latest_slot = slot

    def on_train_end(self, logs=None):
        self._wait()

    def _wait(self):
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
