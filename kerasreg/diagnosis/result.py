"""`diagnose`: does the Dropout/BatchNorm placement of a trained model, built by anyone, hurt it?

Reads the model's graph (`find_structure`) and measures, on a copy and on the
user's data, what kerasreg measures for its own runs: the clean vs the
reported overfitting gap, the variance shift of every BatchNormalization
(Li et al., CVPR 2019), validation accuracy before and after re-estimating
BN statistics (precise BN, Wu & Johnson 2021) and optionally the MC-dropout
spread (Gal & Ghahramani, ICML 2016), and the gap between what `fit`
reports and what `evaluate` gives taken apart (`gap_parts`). Then it says, in a few sentences, what
the numbers mean and what to try.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import keras

from kerasreg import _backend, _checks
from kerasreg._version import __version__
from kerasreg.diagnosis import measure, render
from kerasreg.diagnosis.batch_norm_audit import audit_with_precise, steps_from_manifest
from kerasreg.diagnosis.gap_parts import MIN_STEPS, GapParts, measure_gap_parts
from kerasreg.diagnosis.inputs import check_model, resolve_data
from kerasreg.diagnosis.structure import Structure, find_structure
from kerasreg.diagnosis.verdict import verdict
from kerasreg.training.evaluator import rows_per_chunk
from kerasreg.training.reestimate import copy_model
from kerasreg.training.variance_shift import largest_shift

if TYPE_CHECKING:
    from kerasreg.data.dataset import Dataset

SCHEMA = "kerasreg.diagnose/1"


@dataclasses.dataclass
class Diagnosis:
    """What `diagnose` found and measured.

    Attributes:
        model_name: str.
        dataset: str. The dataset's name (`"arrays"` for arrays).
        task: str. `"classification"`, or `"regression"` for a one-output
            head (gaps on the loss only).
        structure: `Structure` from `find_structure`.
        clean: dict. Inference-mode `train_clean_loss`/`_accuracy` (on
            `train_clean_rows` seeded train rows), `val_loss`, `val_accuracy`,
            and `test_loss`/`test_accuracy` with `test=True`.
        reported: dict. Training-mode `train_reported_loss`/`_accuracy`
            over `train_reported_rows` rows.
        gaps: dict. `clean_gap_*` and `reported_gap_*` for `loss` and
            `accuracy` (accuracy: train minus validation; loss: validation
            minus train).
        variance_shift: dict. BN layer name -> ratio (1 means no shift).
        reestimation: dict or None. After re-estimating BN statistics on a
            copy: `rows`, `val_loss`, `val_accuracy`, `variance_shift_max`,
            and with `test=True` `test_loss`, `test_accuracy`. None without BN.
        mc_dropout: dict or None. `samples`, `mean_std`, `accuracy`.
        verdict: list of str.
        batch_norm: list of `BatchNormFinding`. The BatchNorm audit on the
            train split (`audit_batch_norm`): problems first, then notes.
        gap_parts: `GapParts` or None. The metric `fit` reports minus what
            `evaluate` gives on the same training rows, in three parts that
            add up to it: weight drift, dropout noise, BatchNorm batch
            statistics (`result.gap_parts.dropout_noise.share`).
    """

    model_name: str
    dataset: str
    task: str
    structure: Structure
    clean: dict
    reported: dict
    gaps: dict
    variance_shift: dict
    reestimation: dict | None = None
    mc_dropout: dict | None = None
    verdict: list = dataclasses.field(default_factory=list)
    batch_norm: list = dataclasses.field(default_factory=list)
    gap_parts: GapParts | None = None

    @property
    def variance_shift_max(self):
        """The largest per-layer shift `max(r, 1/r)` (as kerasreg's manifests record it), or None without BN."""
        return largest_shift(self.variance_shift)

    def format(self):
        """The verdict and the per-measure and per-layer tables, for the terminal."""
        return render.format_text(self)

    def write(self, out, *, overwrite=False):
        """Write `diagnose.md`, `diagnose.html` and `diagnose.json` into folder `out`; returns their paths.

        Example:

        >>> kerasreg.diagnose(model, data).write("diagnosis")  # doctest: +SKIP
        """
        return render.write(self, out, overwrite=overwrite)

    def to_dict(self):
        """The JSON form, with the stable keys documented in `docs/guide/diagnose.md` (schema `kerasreg.diagnose/1`)."""
        accuracy = self.task == "classification"
        return {
            "schema": SCHEMA,
            "kerasreg_version": __version__,
            "model": self.model_name,
            "dataset": self.dataset,
            "task": self.task,
            "structure": {
                "batch_norm_layers": list(self.structure.batch_norm_layers),
                "dropout_layers": list(self.structure.dropout_layers),
                "paths": [{"layers": list(p.layers), "kind": p.kind, "placement": p.placement}
                          for p in self.structure.paths],
                "placement": self.structure.placement,
                "blocks": dict(self.structure.blocks),
            },
            "metrics": {**self.clean, **self.reported,
                        **({} if accuracy else {k: None for k in ("train_clean_accuracy", "val_accuracy",
                                                                 "train_reported_accuracy", "test_accuracy")
                           if k in self.clean or k in self.reported})},
            "gaps": {k: (v if accuracy or k.endswith("_loss") else None) for k, v in self.gaps.items()},
            "variance_shift": {"layers": dict(self.variance_shift), "max": self.variance_shift_max},
            "reestimation": self.reestimation,
            "mc_dropout": self.mc_dropout,
            "verdict": list(self.verdict),
            "batch_norm": [dataclasses.asdict(finding) for finding in self.batch_norm],
            "gap_parts": self.gap_parts.to_dict() if self.gap_parts else None,
        }


def diagnose(
    model: keras.Model,
    data: Dataset | str | tuple,
    *,
    test: bool = False,
    mc_samples: int = 0,
    batch_size: int = 32,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    manifest: dict | None = None,
) -> Diagnosis:
    """Whether a trained model's Dropout/BatchNorm placement hurts it, measured on its own data.

    `model` is never modified: every measurement runs on one copy
    (`keras.models.clone_model` plus the weights), whose compiled passes
    they share. The only training, last, is one epoch of `fit` on that copy
    (set back to the model's BatchNorm statistics) over as many seeded train
    rows as the validation split has (at least 10 batches), which continues
    as `fit` would (the model's optimizer and state, its dropout seeds), to
    take apart the gap between what `fit` reports and what `evaluate` gives
    (`GapParts`).

    Training vs inference: the gap Keras reports compares training metrics
    collected in training mode (dropout on, batch statistics) with
    validation in inference mode; the clean gap re-evaluates training rows in
    inference mode. A dropout-kind layer feeding a BatchNormalization makes
    BN's moving variance, learned in training mode, differ from what it sees
    at inference (the variance shift); re-estimating BN statistics with
    dropout off shows how much accuracy that mismatch costs on its own.

    Args:
        model: keras.Model. A Sequential or functional classifier (nested
            models included) with one input and one output; a one-output head
            is read as regression (gaps on the loss only).
        data: a kerasreg `Dataset`, a dataset name (`kerasreg.load_dataset`),
            or `((x_train, y_train), (x_val, y_val))` arrays, optionally with
            a third `(x_test, y_test)` pair.
        test: bool. Also measure the test split. Defaults to `False`.
        mc_samples: int. MC-dropout passes over the validation split
            (`predict_mc`); 0 skips them. Defaults to `0`.
        batch_size: int. Rows per training-mode batch of the reported
            pass and of the `fit` epoch (BatchNorm's batch statistics depend
            on it; use your `fit` batch size). Defaults to `32`, as `fit`.
        seed: int. Seed of the training subset of both gaps, of the order of
            the rows in the `fit` epoch and of the MC-dropout noise.
            Defaults to `0`.
        data_dir: str or path-like or None. Where datasets are prepared, for a
            dataset name. Defaults to `None` (`default_data_dir()`).
        manifest: dict or None. A kerasreg export's manifest: a dataset name is
            then split as that run split it. Defaults to `None`.

    Returns:
        A `Diagnosis`; its `verdict` holds the sentences.

    Example:

    >>> import kerasreg
    >>> model = kerasreg.build_model("mlp", placement="drop_before_bn", input_shape=(40,), num_classes=10, seed=0)
    >>> result = kerasreg.diagnose(model, "mnist1d")
    >>> len(result.structure.paths)
    2
    """
    # The compilation cache finds the passes of an architecture diagnosed before; the user's random generator is
    # kept, so the `fit` epoch draws the dropout masks the user's own next epoch would.
    with _backend.compilation_cache():
        return _diagnose(model, data, test=test, mc_samples=mc_samples, batch_size=batch_size, seed=seed,
                         data_dir=data_dir, manifest=manifest)


def _diagnose(model, data, *, test, mc_samples, batch_size, seed, data_dir, manifest):
    batch_size = _checks.positive_int(batch_size, "batch_size")
    mc_samples = _checks.non_negative_int(mc_samples, "mc_samples")
    _checks.seed(seed)
    if not isinstance(model, keras.Model):
        raise _checks.invalid("model", "a keras.Model", received=f"model={type(model).__name__}")
    structure = find_structure(model)
    splits = resolve_data(data, test=test, manifest=manifest, data_dir=data_dir)
    work = copy_model(model)
    instruments = measure.Instruments.on(work, splits)
    task = check_model(work, splits, outputs=instruments.outputs)
    # Inference batches of 256 rows (or the training batch, if larger); fewer when the rows are large.
    inference_batch = rows_per_chunk(splits.train[0], max(batch_size, 256))
    measure.compile_for(instruments, task, splits, seed=seed, batch_size=inference_batch)
    clean = measure.clean_metrics(instruments, splits)
    shift = instruments.variance_shift()
    mc = (measure.mc_spread(work, splits, samples=mc_samples, seed=seed, batch_size=inference_batch)
          if mc_samples else None)
    # Re-estimation replaces the copy's BN statistics, so it follows every measure that reads the trained ones.
    reestimation = measure.reestimation(instruments, splits) if structure.batch_norm_layers else None
    # The audit's precise statistics are the copy's re-estimated ones: read before any training-mode pass.
    # Its batch-size check runs on the reported gap's rows, and at the user's batch size it is the reported pass.
    batch_norm = audit_with_precise(model, splits.train, batch_size=batch_size, precise=work if reestimation else None,
                                    steps_trained=steps_from_manifest(manifest, len(splits.train[1])),
                                    batch_check=(instruments.gap.subset,
                                                 lambda size: instruments.training_metrics(size)[2]))
    # After every inference-mode measure: training mode does not read the moving statistics, but on TensorFlow it
    # updates them.
    reported = measure.reported_metrics(instruments, batch_size=batch_size)
    # Last, as it trains the copy: an epoch over as many train rows as the validation split has (as for the clean
    # gap), and at least MIN_STEPS batches, so its cost (about three inference passes over those rows) stays that of a
    # few validation passes, whatever the size of the train split.
    parts = measure_gap_parts(model, work, splits.train, task, rows=max(len(splits.val[1]), MIN_STEPS * batch_size),
                              batch_size=batch_size, seed=seed, evaluate=instruments.gap.evaluate,
                              training=instruments.training(batch_size))
    result = Diagnosis(model.name, splits.name, task.kind, structure, clean, reported,
                       measure.gaps(clean, reported), shift, reestimation, mc, gap_parts=parts)
    if task.kind != "classification":
        for part in (result.reestimation or {}, result.mc_dropout or {}):
            for key in [k for k in part if k.endswith("accuracy")]:
                part[key] = None
    result.verdict = verdict(result)
    result.batch_norm = batch_norm
    return result

