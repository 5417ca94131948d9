"""The gap between what `fit` reports and what `evaluate` gives on the same training rows, taken apart.

"fit() says 87%, evaluate() on the same data says 63%" (keras-team/keras
#10214, #6977, #7265) has three causes, answered in those threads by hand;
here each is measured by changing one thing at a time. One epoch of
`model.fit` over a seeded subset of the training rows runs on a copy of
the model (its optimizer and state, its dropout seeds), and four numbers are
measured on the same rows, in the same batches:

1. `fit`: the running mean `fit` reports over the epoch, while the weights move;
2. `training`: the final weights in training mode (Dropout on, BatchNorm on
   each batch's statistics);
3. `dropout_off`: the same with every dropout-kind layer in inference mode;
4. `evaluate`: the final weights in inference mode, as `model.evaluate`.

Their differences, 1-2 (weight drift), 2-3 (dropout noise) and 3-4
(BatchNorm batch vs moving statistics), add up to `fit` minus `evaluate`.
"""

from __future__ import annotations

import contextlib
import dataclasses

import keras
import numpy as np

from kerasreg.diagnosis.structure import is_dropout
from kerasreg.training.evaluator import Evaluator
from kerasreg.training.variance_shift import batch_norm_layers

LEVELS = ("fit", "training", "dropout_off", "evaluate")
# Part name -> the two levels it lies between.
PARTS = {"weight_drift": ("fit", "training"), "dropout_noise": ("training", "dropout_off"),
         "batch_statistics": ("dropout_off", "evaluate")}
# The fewest optimizer steps `diagnose` gives the epoch (when the train split has the rows): fewer show little drift.
MIN_STEPS = 10
# A share of a gap smaller than this (accuracy: a hundredth of a point) is not defined.
_NO_GAP = 1e-4


@dataclasses.dataclass(frozen=True)
class GapPart:
    """One part of the fit-vs-evaluate gap: fit minus evaluate, in accuracy (a fraction) and loss.

    Attributes:
        name: str. `"weight_drift"`, `"dropout_noise"` or `"batch_statistics"`.
        accuracy: float or None. Its part of the accuracy gap (None for a regression head).
        loss: float. Its part of the loss gap.
        share: float or None. Its fraction of the gap (accuracy; loss for a regression
            head); the three shares add up to 1. None when there is no gap to share.
        measured: bool. False when the part is 0 by construction (no dropout-kind
            layer, or no BatchNormalization), and was not measured.
    """

    name: str
    accuracy: float | None
    loss: float
    share: float | None
    measured: bool


@dataclasses.dataclass(frozen=True)
class GapParts:
    """The gap between the metric `fit` reports and `evaluate` on the same training rows, in three parts.

    Training vs inference: `fit` collects its metrics in training mode
    (Dropout on, BatchNormalization on each batch's statistics) while the
    weights move over the epoch; `evaluate` runs the final weights in
    inference mode (Dropout off, BatchNorm on its moving statistics). The
    parts change one of these at a time, so they add up to the whole gap.

    Attributes:
        rows: int. Training rows of the epoch and of every measure: the
            first whole batches of `batch_size` in the order
            `np.random.default_rng(seed).permutation` gives.
        batch_size: int. Rows per batch, in `fit` and in the training-mode passes.
        optimizer: str. What trained the epoch.
        levels: dict. `fit`, `training`, `dropout_off`, `evaluate` -> `{"loss", "accuracy"}`
            (accuracy None for a regression head).

    Example:

    >>> parts = kerasreg.diagnose(model, data).gap_parts  # doctest: +SKIP
    >>> parts.dropout_noise.accuracy, parts.dropout_noise.share  # doctest: +SKIP
    (-0.14, 0.58)
    """

    rows: int
    batch_size: int
    optimizer: str
    levels: dict
    measured: tuple = tuple(PARTS)

    @property
    def steps(self):
        """Optimizer steps of the epoch."""
        return self.rows // self.batch_size

    @property
    def gap(self):
        """`{"loss", "accuracy"}`: what `fit` reports minus what `evaluate` gives."""
        return _difference(self.levels["fit"], self.levels["evaluate"])

    @property
    def metric(self):
        """The metric the shares are of: `"accuracy"`, or `"loss"` for a regression head."""
        return "loss" if self.levels["evaluate"]["accuracy"] is None else "accuracy"

    def part(self, name):
        """The `GapPart` called `name` (a key of `PARTS`)."""
        upper, lower = PARTS[name]
        values = _difference(self.levels[upper], self.levels[lower])
        whole = self.gap[self.metric]
        share = values[self.metric] / whole if abs(whole) >= _NO_GAP else None
        return GapPart(name, values["accuracy"], values["loss"], share, name in self.measured)

    @property
    def weight_drift(self):
        """`fit`'s running mean minus the final weights in training mode."""
        return self.part("weight_drift")

    @property
    def dropout_noise(self):
        """The final weights in training mode minus the same with dropout off."""
        return self.part("dropout_noise")

    @property
    def batch_statistics(self):
        """Dropout off, BatchNorm on batch statistics minus its moving statistics (`evaluate`)."""
        return self.part("batch_statistics")

    def __iter__(self):
        return iter([self.part(name) for name in PARTS])

    def to_dict(self):
        """The JSON form (`diagnose.json`'s `gap_parts`)."""
        return {"rows": self.rows, "batch_size": self.batch_size, "steps": self.steps, "optimizer": self.optimizer,
                "levels": {k: dict(v) for k, v in self.levels.items()}, "gap": self.gap,
                "parts": {p.name: {"accuracy": p.accuracy, "loss": p.loss, "share": p.share, "measured": p.measured}
                          for p in self}}


def _difference(upper, lower):
    accuracy = None if upper["accuracy"] is None else upper["accuracy"] - lower["accuracy"]
    return {"loss": upper["loss"] - lower["loss"], "accuracy": accuracy}


def whole_batches(rows, batch_size):
    """How many of `rows` fill whole batches of `batch_size` (all of them when fewer than one batch).

    A last partial batch is left out, so no short batch enters BatchNorm's batch statistics.

    Example:

    >>> whole_batches(100, 32), whole_batches(20, 32)
    (96, 20)
    """
    return rows // batch_size * batch_size if rows >= batch_size else rows


def _noise_state(model):
    """The model's random-generator states (its dropout seeds): the variables that are not weights."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _assign_copies(ours, theirs):
    # Copies, not the arrays themselves: on JAX `fit` donates its state's buffers, which would delete the user's.
    for variable, value in zip(ours, theirs):
        variable.assign(keras.ops.convert_to_numpy(value))


def _continued_optimizer(model, copy):
    """A copy of `model`'s optimizer for `copy`, with its state (moments, step count); Adam if there is none."""
    original = getattr(model, "optimizer", None)
    if original is None:
        return keras.optimizers.Adam(), "Adam with Keras's defaults (the model has no optimizer)"
    optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(original))
    optimizer.build(copy.trainable_variables)
    name = type(original).__name__
    if not original.built:
        return optimizer, f"the model's {name}, from a fresh state (it has not trained yet)"
    if [tuple(v.shape) for v in optimizer.variables] != [tuple(v.shape) for v in original.variables]:
        return optimizer, f"the model's {name}, from a fresh state (its state does not match the weights)"
    _assign_copies(optimizer.variables, original.variables)
    return optimizer, f"the model's {name}, continuing from its state"


@contextlib.contextmanager
def dropout_off(model):
    """Within the block, every dropout-kind layer of `model` runs in inference mode, even in a training-mode call.

    Training vs inference: BatchNormalization still normalises with each
    batch's statistics in a training-mode call; only the dropout noise is gone.

    Example:

    >>> with dropout_off(model):  # doctest: +SKIP
    ...     model(x, training=True)
    """
    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True) if is_dropout(layer)]

    def inference(original):
        return lambda *args, **kwargs: original(*args, **{**kwargs, "training": False})

    for layer in layers:
        layer.call = inference(layer.call)
    try:
        yield
    finally:
        for layer in layers:
            del layer.call


def measure_gap_parts(model, work, train, task, *, rows, batch_size, seed, evaluate, training):
    """Train one epoch of `model.fit` on `work`, a copy of `model`, and take apart its reported metric minus `evaluate`'s.

    The copy continues as `fit` would: the model's weights, its BatchNorm
    statistics, its optimizer with its state and its dropout seeds; `model`
    is never changed. The epoch's rows are the first `rows` of `train` in the
    order `np.random.default_rng(seed).permutation` gives, cut to whole
    batches of `batch_size` (`fit` runs with `shuffle=False` on them).
    A part that is 0 by construction (no dropout-kind layer, or no
    BatchNormalization) is not measured.

    Args:
        model: keras.Model. The user's trained model.
        work: keras.Model. `diagnose`'s copy of `model`, with `model`'s
            weights; its non-trainable state (BatchNorm statistics, dropout
            seeds) is set back to `model`'s here, and then it trains: nothing
            may measure it afterwards.
        train: tuple `(x, y)` of arrays. The training split.
        task: `Task` from `check_model` (its loss trains and evaluates).
        rows: int. Rows of the epoch, at most (fewer when `train` has fewer).
        batch_size: int. Rows per batch, as in `fit`.
        seed: int. Seed of the rows' order.
        evaluate: callable `(x, y) -> (loss, accuracy)`: `work` in inference
            mode, reading its variables at each call (`OverfittingGap.evaluate`).
        training: `Evaluator` on `work` in training mode at `batch_size`.

    Returns:
        `GapParts`.

    Example:

    >>> measure_gap_parts(model, work, splits.train, task, rows=500, batch_size=32, seed=0,
    ...                   evaluate=gap.evaluate, training=Evaluator(work, 32, training=True))  # doctest: +SKIP
    """
    x, y = train
    order = np.random.default_rng(seed).permutation(len(y))[:whole_batches(min(rows, len(y)), batch_size)]
    x, y = np.asarray(x)[order], np.asarray(y)[order]
    # Re-estimation and TensorFlow's training-mode passes changed the copy's statistics: the epoch starts from the user's.
    _assign_copies(work.non_trainable_weights + _noise_state(work), model.non_trainable_weights + _noise_state(model))
    optimizer, trained_by = _continued_optimizer(model, work)
    work.compile(optimizer=optimizer, loss=task.loss, metrics=["accuracy"] if task.classification else [])
    logs = work.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0).history

    def level(loss, accuracy):
        return {"loss": float(loss), "accuracy": float(accuracy) if task.classification else None}

    levels = {"fit": level(logs["loss"][-1], logs["accuracy"][-1] if task.classification else 0.0),
              "evaluate": level(*evaluate(x, y))}
    has_dropout = any(is_dropout(layer) for layer in work._flatten_layers(include_self=False, recursive=True))
    has_batch_norm = bool(batch_norm_layers(work))
    # Training-mode passes last: on TensorFlow they update the copy's moving statistics.
    levels["dropout_off"] = levels["evaluate"]
    if has_batch_norm:
        with dropout_off(work):
            levels["dropout_off"] = level(*Evaluator(work, batch_size, training=True).evaluate(x, y))
    levels["training"] = level(*training.evaluate(x, y)) if has_dropout else levels["dropout_off"]
    measured = tuple(name for name, present in zip(PARTS, (True, has_dropout, has_batch_norm)) if present)
    return GapParts(int(len(y)), int(min(batch_size, len(y))), trained_by,
                    {name: levels[name] for name in LEVELS}, measured)
