"""The numbers `diagnose` measures on a copy of the user's model, each with kerasreg's own instrument.

- the clean gap: `OverfittingGap`'s inference-mode re-evaluation of a
  training subset (as many rows as the validation split, drawn with `seed`);
- the reported gap: the same `Evaluator` in training mode over one epoch of
  the train split, the running numbers `fit` would log with these weights;
- the variance shift of every BatchNormalization: `VarianceShiftMonitor` on
  the first validation rows, as during kerasreg training;
- validation (and test) accuracy before and after `reestimate_batch_norm`;
- with `mc_samples`, the MC-dropout spread of `predict_mc`.

Nothing here trains, and the user's model is never touched: every function
takes the copy `diagnose` made.
"""

from __future__ import annotations

import numpy as np

from kerasreg.analysis.mc_dropout import predict_mc
from kerasreg.training.evaluator import Evaluator
from kerasreg.training.gap import OverfittingGap
from kerasreg.training.reestimate import copy_model, reestimate_batch_norm, variance_shift_max
from kerasreg.training.variance_shift import VARIANCE_SHIFT_BATCH, VarianceShiftMonitor


def compile_for(model, task):
    """Compile `model` (a copy) with the loss `task` chose, so the evaluators can read it."""
    model.compile(loss=task.loss, metrics=["accuracy"] if task.classification else [])


def clean_metrics(model, splits, *, seed, batch_size):
    """Inference-mode loss and accuracy on a seeded training subset, validation and (if given) test."""
    gap = OverfittingGap(splits.train, validation_data=splits.val, seed=seed, batch_size=batch_size)
    gap.set_model(model)
    train_loss, train_accuracy = gap.evaluate_subset()
    val_loss, val_accuracy = gap.evaluate(*splits.val)
    metrics = {"train_clean_loss": train_loss, "train_clean_accuracy": train_accuracy,
               "val_loss": val_loss, "val_accuracy": val_accuracy, "train_clean_rows": len(gap.subset_indices)}
    if splits.test is not None:
        metrics["test_loss"], metrics["test_accuracy"] = gap.evaluate(*splits.test)
    return metrics


def reported_metrics(model, splits, *, batch_size):
    """Training-mode running loss and accuracy over one epoch of the train split, with no weight update.

    Training vs inference: Dropout drops and BatchNormalization normalises
    with each batch's statistics, as while `fit` collects its running `loss`
    and `accuracy`; unlike `fit`, the weights stay those of the trained model.
    Batches have `batch_size` rows; a last partial batch is left out, so no
    padding enters a batch's statistics. Runs on a further copy (the
    TensorFlow backend updates a model's moving statistics in training mode).
    """
    x, y = splits.train
    rows = max(batch_size, len(y) // batch_size * batch_size) if len(y) >= batch_size else len(y)
    loss, accuracy = Evaluator(copy_model(model), batch_size, training=True).evaluate(x[:rows], y[:rows])
    return {"train_reported_loss": loss, "train_reported_accuracy": accuracy, "train_reported_rows": int(rows)}


def gaps(clean, reported):
    """Clean and reported gaps from the two metric dicts, with `OverfittingGap`'s signs (positive = overfit)."""
    values = {"clean_gap_loss": clean["val_loss"] - clean["train_clean_loss"],
              "reported_gap_loss": clean["val_loss"] - reported["train_reported_loss"],
              "clean_gap_accuracy": clean["train_clean_accuracy"] - clean["val_accuracy"],
              "reported_gap_accuracy": reported["train_reported_accuracy"] - clean["val_accuracy"]}
    return values


def variance_shift(model, splits):
    """Per-BatchNorm variance-shift ratios on the first validation rows (`VarianceShiftMonitor`'s measure)."""
    monitor = VarianceShiftMonitor(splits.val[0][:VARIANCE_SHIFT_BATCH])
    monitor.set_model(model)
    return monitor.variance_shift()


def reestimation(model, splits, *, batch_size):
    """Validation (and test) numbers of a copy whose BatchNorm statistics are re-estimated on the train split.

    The same procedure and measures as `reestimation_metrics` during
    kerasreg training (`reestimate_batch_norm`, dropout off), so for a
    kerasreg export these equal the manifest's `test_accuracy_reestimated`
    and `variance_shift_reestimated`.
    """
    fixed = reestimate_batch_norm(model, splits.train, batch_size=1000)
    fixed.compile(loss=model.loss, metrics=["accuracy"])
    evaluator = Evaluator(fixed, batch_size)
    result = {"rows": int(len(splits.train[1])),
              "variance_shift_max": variance_shift_max(fixed, splits.val[0][:VARIANCE_SHIFT_BATCH])}
    result["val_loss"], result["val_accuracy"] = evaluator.evaluate(*splits.val)
    if splits.test is not None:
        result["test_loss"], result["test_accuracy"] = evaluator.evaluate(*splits.test)
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
