"""The numbers `diagnose` measures on a copy of the user's model, each with kerasreg's own instrument.

- the clean gap: `OverfittingGap`'s inference-mode re-evaluation of a
  training subset (as many rows as the validation split, drawn with `seed`);
- the reported gap: the same `Evaluator` in training mode over the same
  rows, the running numbers `fit` would log with these weights;
- the variance shift of every BatchNormalization: `VarianceShiftMonitor` on
  the first validation rows, as during kerasreg training;
- validation (and test) accuracy before and after `reestimate_batch_norm`;
- with `mc_samples`, the MC-dropout spread of `predict_mc`.

Nothing here trains, and the user's model is never touched: every function
takes the copy `diagnose` made. The copy is compiled into two inference
passes (`Instruments`) that every inference measurement shares: both read
the copy's variables at each call, so once its BN statistics are
re-estimated in place the same compiled passes measure the re-estimated
model, with no second copy and no second compilation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasreg.analysis.mc_dropout import predict_mc
from kerasreg.diagnosis.gap_parts import whole_batches
from kerasreg.training.evaluator import training_evaluators
from kerasreg.training.gap import OverfittingGap
from kerasreg.training.reestimate import reestimate_batch_norm
from kerasreg.training.variance_shift import (
    VARIANCE_SHIFT_BATCH,
    VarianceShiftMonitor,
    batch_norm_layers,
    largest_shift,
)


@dataclasses.dataclass
class Instruments:
    """The compiled inference passes on `diagnose`'s copy: the clean-gap evaluator and the variance-shift probe.

    Attributes:
        model: keras.Model. The copy.
        monitor: `VarianceShiftMonitor` on the first validation rows; its
            one compiled call also gives the outputs `check_model` reads.
        gap: `OverfittingGap`, made by `compile_for` (the loss it evaluates
            is known only once the outputs were read); None before.
        shift: dict or None. The ratios of the probe's last call, until
            `variance_shift` hands them out.
        training: callable. Batch size -> the copy's training-mode
            `Evaluator` at that batch size (`training_evaluators`), compiled
            once for every measure that runs one. Training vs inference: see
            `reported_metrics`; on JAX a pass carries the copy's non-trainable
            state (dropout seeds, moving statistics) from call to call itself,
            and a training-mode output depends on the weights and the batch alone.
        training_results: dict. Batch size -> what `training_metrics` measured.
    """

    model: object
    monitor: VarianceShiftMonitor
    gap: OverfittingGap | None = None
    shift: dict | None = None
    training: object = None
    training_results: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def on(cls, model, splits):
        """Instruments for `model` (a copy) on `splits`; nothing is compiled before first use."""
        monitor = VarianceShiftMonitor(splits.val[0][:VARIANCE_SHIFT_BATCH])
        monitor.set_model(model)
        return cls(model, monitor, training=training_evaluators(model))

    def outputs(self):
        """The copy's inference-mode outputs on the variance-shift rows; the shift of that call is kept."""
        self.shift, outputs = self.monitor.measure()
        return outputs

    def training_metrics(self, batch_size):
        """`(rows, loss, accuracy)` of the copy in training mode on the clean gap's training rows, once per batch size.

        The rows are cut to whole batches of `batch_size` (all of them when
        fewer than one batch), so no padding enters a batch's statistics;
        the reported gap and the audit's batch-size check share each pass.
        """
        if batch_size not in self.training_results:
            x, y = self.gap.subset
            rows = whole_batches(len(y), batch_size)
            self.training_results[batch_size] = (rows, *self.training(batch_size).evaluate(x[:rows], y[:rows]))
        return self.training_results[batch_size]

    def variance_shift(self):
        """Per-BatchNorm variance-shift ratios of the copy as it is now (`VarianceShiftMonitor`'s measure).

        Every call runs the same compiled probe; the ratios of a call
        `outputs` made are used once instead of measuring again.
        """
        shift, self.shift = self.shift, None
        if shift is None:
            shift = self.monitor.measure()[0] if batch_norm_layers(self.model) else {}
        return shift


def compile_for(instruments, task, splits, *, seed, batch_size):
    """Compile the copy with the loss `task` chose, and make the clean-gap evaluator that reads it."""
    instruments.model.compile(loss=task.loss, metrics=["accuracy"] if task.classification else [])
    instruments.gap = OverfittingGap(splits.train, validation_data=splits.val, seed=seed, batch_size=batch_size)
    instruments.gap.set_model(instruments.model)


def clean_metrics(instruments, splits):
    """Inference-mode loss and accuracy on a seeded training subset, validation and (if given) test."""
    gap = instruments.gap
    train_loss, train_accuracy = gap.evaluate_subset()
    val_loss, val_accuracy = gap.evaluate(*splits.val)
    metrics = {"train_clean_loss": train_loss, "train_clean_accuracy": train_accuracy,
               "val_loss": val_loss, "val_accuracy": val_accuracy, "train_clean_rows": len(gap.subset_indices)}
    if splits.test is not None:
        metrics["test_loss"], metrics["test_accuracy"] = gap.evaluate(*splits.test)
    return metrics


def reported_metrics(instruments, *, batch_size):
    """Training-mode running loss and accuracy over the clean gap's training rows, with no weight update.

    Training vs inference: Dropout drops and BatchNormalization normalises
    with each batch's statistics, as while `fit` collects its running `loss`
    and `accuracy`; unlike `fit`, the weights stay those of the trained model.
    The rows are the clean gap's seeded subset, so the two gaps differ in the
    mode alone (`Instruments.training_metrics`). Training mode does not read
    the moving statistics, but the TensorFlow backend updates them on the
    copy: measure nothing in inference mode on it afterwards.
    """
    rows, loss, accuracy = instruments.training_metrics(batch_size)
    return {"train_reported_loss": loss, "train_reported_accuracy": accuracy, "train_reported_rows": int(rows)}


def gaps(clean, reported):
    """Clean and reported gaps from the two metric dicts, with `OverfittingGap`'s signs (positive = overfit)."""
    values = {"clean_gap_loss": clean["val_loss"] - clean["train_clean_loss"],
              "reported_gap_loss": clean["val_loss"] - reported["train_reported_loss"],
              "clean_gap_accuracy": clean["train_clean_accuracy"] - clean["val_accuracy"],
              "reported_gap_accuracy": reported["train_reported_accuracy"] - clean["val_accuracy"]}
    return values


def reestimation(instruments, splits):
    """Validation (and test) numbers after re-estimating the copy's BatchNorm statistics on the train split, in place.

    The same procedure and measures as `reestimation_metrics` during
    kerasreg training (`reestimate_batch_norm`, dropout off), so for a
    kerasreg export these equal the manifest's `test_accuracy_reestimated`
    and `variance_shift_reestimated`. The instruments' compiled passes
    measure the re-estimated statistics; the copy keeps them, so every
    inference-mode measure of the trained statistics must come first.
    """
    reestimate_batch_norm(instruments.model, splits.train, batch_size=1000, copy=False)
    gap = instruments.gap
    result = {"rows": int(len(splits.train[1])), "variance_shift_max": largest_shift(instruments.variance_shift())}
    result["val_loss"], result["val_accuracy"] = gap.evaluate(*splits.val)
    if splits.test is not None:
        result["test_loss"], result["test_accuracy"] = gap.evaluate(*splits.test)
    return result


def mc_spread(model, splits, *, samples, seed, batch_size):
    """MC-dropout predictive spread on the validation split: mean std of the predicted output, and the mean's accuracy."""
    x, y = splits.val
    mean, std = predict_mc(model, x, samples=samples, seed=seed, batch_size=batch_size)
    if mean.ndim == 2 and mean.shape[-1] > 1:
        predicted = np.argmax(mean, axis=-1)
        labels = np.argmax(y, axis=-1) if np.ndim(y) == 2 else np.reshape(y, -1)
        return {"samples": samples, "mean_std": float(np.mean(std[np.arange(len(std)), predicted])),
                "accuracy": float(np.mean(predicted == labels))}
    return {"samples": samples, "mean_std": float(np.mean(std)), "accuracy": None}
