"""Small callbacks `train` adds around the measuring ones: seeds, divergence, timing, progress, TensorBoard."""

import math
import sys
import time

import keras
import numpy as np


class EpochSeeds(keras.callbacks.Callback):
    """Resets every random layer's seed state from (its seed, epoch) at each epoch start.

    Dropout noise then depends only on the epoch, not on how many steps ran
    in this process, which is what makes a resumed run equal an
    uninterrupted one.
    """

    def on_train_begin(self, logs=None):
        self._generators = [
            g for layer in self.model._flatten_layers() for g in getattr(layer, "_seed_generators", [])
        ]
        self._first = [int(keras.ops.convert_to_numpy(g.state.value)[0]) for g in self._generators]

    def on_epoch_begin(self, epoch, logs=None):
        for generator, first in zip(self._generators, self._first):
            generator.state.assign(np.array([first, epoch * 100_003], dtype=generator.state.dtype))


class DivergenceGuard(keras.callbacks.Callback):
    """Stops at the first NaN or inf loss and remembers the epoch."""

    def __init__(self):
        super().__init__()
        self.message = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.message = (
                f"Training diverged: loss became {loss} at epoch {epoch + 1}. "
                "Lower the learning rate or check the inputs."
            )
            self.model.stop_training = True


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_time` (seconds) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_time"] = time.perf_counter() - self._start


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch with the numbers this package is about."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for key, label in [("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"),
                           ("val_accuracy", "val_acc"), ("clean_gap_accuracy", "clean_gap_acc"),
                           ("reported_gap_accuracy", "reported_gap_acc")]:
            if key in logs:
                parts.append(f"{label} {logs[key]:.4f}")
        if "epoch_time" in logs:
            parts.append(f"{logs['epoch_time']:.2f}s")
        print("  ".join(parts), file=sys.stderr, flush=True)


class EpochScalars(keras.callbacks.Callback):
    """Writes each epoch's logs as TensorBoard scalars, laid out as `keras.callbacks.TensorBoard` does.

    Same folders and tags as Keras's callback with `update_freq="epoch"`:
    `<log_dir>/train` gets `epoch_<key>` for every key, `<log_dir>/validation`
    gets `epoch_<key>` for every `val_<key>`. The events are written by
    TensorBoard's own event-file writer in plain Python: Keras's callback runs
    TensorFlow ops for every scalar, about 13 ms per epoch measured here, as
    much as a small model's whole epoch. A resumed run adds new event files
    next to the old ones, as Keras's callback does.

    Example:

    >>> model.fit(x, y, epochs=3, callbacks=[EpochScalars("/tmp/run/logs")])  # doctest: +SKIP
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = str(log_dir)
        self._writers = {}

    def _writer(self, split):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        if split not in self._writers:
            self._writers[split] = EventFileWriter(f"{self.log_dir}/{split}")
        return self._writers[split]

    def on_epoch_end(self, epoch, logs=None):
        from tensorboard.compat.proto import event_pb2, summary_pb2

        splits = {"train": [], "validation": []}
        for key, value in (logs or {}).items():
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if np.ndim(value) == 0:
                splits[split].append(summary_pb2.Summary.Value(tag=f"epoch_{tag}", simple_value=float(value)))
        for split, values in splits.items():
            if values:
                event = event_pb2.Event(wall_time=time.time(), step=epoch, summary=summary_pb2.Summary(value=values))
                self._writer(split).add_event(event)

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
