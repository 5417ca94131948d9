"""The verdict: a few plain sentences with the numbers `diagnose` measured and what to try.

What it recommends is what kerasreg's study measured (README, "What the
study shows"): in the deep arm (resnet_small, rate 0.5, MNIST-1D, 5 seeds,
paired and Holm-corrected) dropout feeding BatchNorm cost 2.6 points
(`bn_act_drop`) and 3.5 points (`drop_before_bn`) against BatchNorm alone;
re-estimating BN statistics did not give it back once training had reached
its plateau; dropout after the last BatchNorm (`head_dropout`) cost nothing
measurable.
"""

from __future__ import annotations

from kerasreg._text import plural

# Deep-arm cost of each placement against BatchNorm alone, in accuracy points (quick study, 0.2).
STUDY_COST = {"drop_before_bn": 3.5, "bn_act_drop": 2.6}
# A variance shift below this (either direction) is within measurement noise on a few hundred rows.
SHIFT_NOTICEABLE = 1.1
# A change of re-estimated validation accuracy below this many points is reported as none.
POINTS_NOTICEABLE = 0.5
_SHOWN_PATHS = 3


def _points(value):
    return 100.0 * value


def _structure_sentence(structure):
    paths = structure.paths
    if not structure.batch_norm_layers:
        return "The model has no BatchNormalization layer, so dropout cannot shift BatchNorm statistics."
    if not structure.dropout_layers:
        return (f"The model has {len(structure.batch_norm_layers)} BatchNormalization layers and no dropout-kind "
                "layer, so nothing shifts their statistics between training and inference.")
    if not paths:
        where = f" (its blocks match kerasreg's `{structure.placement}` placement)" if structure.placement else ""
        return (f"Dropout does not reach any of the {len(structure.batch_norm_layers)} BatchNormalization layers "
                f"without a weight layer in between{where}.")
    shown = ", ".join(path.text() for path in paths[:_SHOWN_PATHS]) + (", ..." if len(paths) > _SHOWN_PATHS else "")
    placement = next((p.placement for p in paths if p.placement), None)
    match = f"; the blocks match kerasreg's `{placement}` placement" if placement else ""
    return (f"Dropout feeds BatchNorm on {plural(len(paths), 'path')} ({shown}) out of "
            f"{plural(len(structure.batch_norm_layers), 'BatchNormalization layer')}{match}.")


def _shift_sentence(shift):
    if not shift:
        return None
    layer, ratio = max(shift.items(), key=lambda item: max(item[1], 1.0 / item[1]))
    return f"The largest variance shift is {ratio:.3g} at {layer} (1 means inference statistics match training)."


def _reestimation_sentence(diagnosis):
    re = diagnosis.reestimation
    if not re or re.get("val_accuracy") is None or diagnosis.clean.get("val_accuracy") is None:
        if re and re.get("val_loss") is not None:
            return (f"Re-estimating BatchNorm statistics changes the validation loss from "
                    f"{diagnosis.clean['val_loss']:.4g} to {re['val_loss']:.4g}.")
        return None
    change = _points(re["val_accuracy"] - diagnosis.clean["val_accuracy"])
    return (f"Re-estimating BatchNorm statistics changes validation accuracy by {change:+.1f} points "
            f"({diagnosis.clean['val_accuracy']:.1%} -> {re['val_accuracy']:.1%}).")


def _gap_sentence(diagnosis):
    g = diagnosis.gaps
    if diagnosis.task == "regression":
        return (f"The model has a regression head (one output), so the gaps are on the loss only: clean gap "
                f"{g['clean_gap_loss']:+.4g}, reported gap {g['reported_gap_loss']:+.4g} (validation loss minus "
                "training loss).")
    return (f"The clean gap is {_points(g['clean_gap_accuracy']):+.1f} points (training accuracy in inference mode "
            f"minus validation accuracy); the gap Keras reports is {_points(g['reported_gap_accuracy']):+.1f} points, "
            "because dropout and batch statistics are on while `fit` collects training metrics.")


def _advice(diagnosis):
    structure = diagnosis.structure
    shift_max = diagnosis.variance_shift_max or 1.0  # no BatchNorm: no shift
    re = diagnosis.reestimation or {}
    change = None
    if re.get("val_accuracy") is not None and diagnosis.clean.get("val_accuracy") is not None:
        change = _points(re["val_accuracy"] - diagnosis.clean["val_accuracy"])
    if structure.paths and all(p.kind == "Uout" for p in structure.paths):
        return (f"The layers feeding BatchNorm are Uout, variance-stable by design (Li et al., CVPR 2019): the "
                f"largest shift is {shift_max:.3g}; in kerasreg's deep-net study `uout` was level with BatchNorm "
                "alone.")
    if structure.paths:
        placement = next((p.placement for p in structure.paths if p.placement), None)
        cost = (f"this placement (`{placement}`) cost {STUDY_COST[placement]} points" if placement in STUDY_COST
                else f"dropout feeding BatchNorm cost {min(STUDY_COST.values())}-{max(STUDY_COST.values())} points")
        recovered = ""
        if change is not None and change >= POINTS_NOTICEABLE:
            recovered = (" Re-estimation helps here, a sign that training has not reached its plateau; "
                         "in the study it gave nothing back once it had.")
        return (f"In kerasreg's deep-net study {cost} against BatchNorm alone, and re-estimating "
                "BN statistics did not give it back: move dropout after the last BatchNorm "
                "(`kerasreg.move_dropout(model, to=\"head\")`) and retrain." + recovered)
    if structure.batch_norm_layers and structure.dropout_layers and shift_max >= SHIFT_NOTICEABLE:
        return (f"Dropout reaches BatchNorm only through weight layers, yet the variance shift is {shift_max:.3g}; "
                "in kerasreg's deep-net study dropout feeding the next block's BatchNorm through its weights "
                f"(`bn_act_drop`) cost {STUDY_COST['bn_act_drop']} points: try dropout only after the last "
                "BatchNorm (`head_dropout`).")
    stale = change is not None and abs(change) >= POINTS_NOTICEABLE
    if not (structure.batch_norm_layers and structure.dropout_layers):
        return "Nothing to report about where dropout sits." + (
            " Re-estimating BN statistics still changes validation accuracy: the moving statistics do not match "
            "the training data (training stopped early, or the data changed since)." if stale else "")
    if stale and change > 0:
        return (f"Re-estimating BN statistics gains {change:.1f} points: the moving statistics lag behind the "
                "weights (too few steps for BatchNorm's momentum, or training stopped early); re-estimate them "
                "(`kerasreg.reestimate_batch_norm`) or train longer.")
    if stale:
        return None
    return "Nothing to report: dropout and BatchNorm do not interfere measurably in this model."


def verdict(diagnosis):
    """The verdict sentences of a `Diagnosis`, most important first.

    Example:

    >>> verdict(kerasreg.diagnose(model, data))  # doctest: +SKIP
    ['Dropout feeds BatchNorm on 2 paths (drop_1 -> bn_2, ...)', ...]
    """
    sentences = [_structure_sentence(diagnosis.structure), _shift_sentence(diagnosis.variance_shift),
                 _reestimation_sentence(diagnosis), _advice(diagnosis), _gap_sentence(diagnosis)]
    return [s for s in sentences if s]
