"""The run directory: the one place for its files and rules (status, checkpoint, logs, resume).

```
<run_dir>/
  status.json        running | completed | failed, with final metrics or the reason
  backup/            Keras BackupAndRestore checkpoint of the last completed epoch
  history.csv        per-epoch metrics and gaps (CSVLogger)
  gaps.jsonl, variance_shift.jsonl, logs/ (TensorBoard)
  model.keras        the trained model, written last
```
"""

import csv
import json
import os
import pathlib
import shutil

import keras

STATUS = "status.json"
CHECKPOINT = "backup"
HISTORY = "history.csv"
MODEL_FILE = "model.keras"
JSONL_LOGS = ("gaps.jsonl", "variance_shift.jsonl")
TENSORBOARD = "logs"


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

    def start(self, *, resume):
        """Prepare for training; returns the number of epochs already completed.

        A fresh run removes an old checkpoint (BackupAndRestore would
        otherwise silently continue from it); a resumed run drops the log
        lines of epochs after the checkpoint (written just before a kill).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        completed = 0
        if resume:
            completed = self.completed_epochs()
            self._truncate_logs(completed)
        else:
            shutil.rmtree(self.path / CHECKPOINT, ignore_errors=True)
        self.write_status("running")
        return completed

    def completed_epochs(self):
        """Epochs finished before the last checkpoint, read from Keras's backup metadata."""
        metadata = self.path / CHECKPOINT / "training_metadata.json"
        if not metadata.exists():
            return 0
        return int(json.loads(metadata.read_text())["epoch"])

    def _truncate_logs(self, epochs_done):
        history = self.path / HISTORY
        if history.exists():
            lines = history.read_text().splitlines(keepends=True)
            history.write_text("".join(lines[: 1 + epochs_done]) if epochs_done else "")
        for name in JSONL_LOGS:
            path = self.path / name
            if path.exists():
                lines = path.read_text().splitlines(keepends=True)
                path.write_text("".join(lines[:epochs_done]))

    def callbacks(self, *, append):
        """The callbacks that write this directory: CSV history, TensorBoard, checkpoint."""
        return [
            keras.callbacks.CSVLogger(str(self.path / HISTORY), append=append),
            keras.callbacks.TensorBoard(str(self.path / TENSORBOARD), write_graph=False, profile_batch=0),
            keras.callbacks.BackupAndRestore(str(self.path / CHECKPOINT)),
        ]

    def history(self):
        """The full per-epoch history, including epochs before a resume."""
        return read_history(self.path / HISTORY)

    def write_status(self, status, **fields):
        """Write `status.json`: `running`, `completed` (with metrics) or `failed` (with the reason)."""
        (self.path / STATUS).write_text(json.dumps({"status": status, **fields}, indent=2))

    def finish(self, model, **fields):
        """Save the trained model, drop the checkpoint and mark the run completed.

        Saved under a temporary name first: a kill mid-save must not leave a
        broken `model.keras`.
        """
        partial = self.path / "model.partial.keras"
        model.save(partial)
        os.replace(partial, self.path / MODEL_FILE)
        shutil.rmtree(self.path / CHECKPOINT, ignore_errors=True)
        self.write_status("completed", **fields)
