"""The verdict: a few plain sentences with the numbers `diagnose` measured and what to try.

What it recommends is what kerasreg's quick study measured in its deep arm
(resnet_small, rate 0.5, MNIST-1D, fixed contrasts against BatchNorm alone):
the figures it quotes come from the published summary
(`kerasreg.analysis.published`), and only the decisions that the study's
reruns on other seeds and on the TensorFlow backend agree on.
"""

from __future__ import annotations

from kerasreg._text import plural
from kerasreg.analysis import published

# Placements whose dropout feeds BatchNorm in every block, as the quick study's deep arm measured them.
FEEDING_BN = ("bn_act_drop", "drop_before_bn")
# A variance shift below this (either direction) is within measurement noise on a few hundred rows.
SHIFT_NOTICEABLE = 1.1
# A change of re-estimated validation accuracy below this many points is reported as none.
POINTS_NOTICEABLE = 0.5
_SHOWN_PATHS = 3


def _points(value):
    return 100.0 * value


def structure_sentence(structure):
    """Where dropout meets BatchNorm in a model's graph, in one sentence (no data needed)."""
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
                f"largest shift is {shift_max:.3g}.")
    if structure.paths:
        placement = next((p.placement for p in structure.paths if p.placement), None)
        recovered = ""
        if change is not None and change >= POINTS_NOTICEABLE:
            recovered = " Re-estimation helps here, a sign that training has not reached its plateau."
        return (f"{study_cost(placement)}: move dropout after the last BatchNorm "
                "(`kerasreg.move_dropout(model, to=\"head\")`) and retrain." + recovered)
    if structure.batch_norm_layers and structure.dropout_layers and shift_max >= SHIFT_NOTICEABLE:
        return (f"Dropout reaches BatchNorm only through weight layers, yet the variance shift is {shift_max:.3g}. "
                f"{study_cost('bn_act_drop')}: try dropout only after the last BatchNorm (`head_dropout`).")
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


def study_cost(placement=None):
    """What kerasreg's quick study measured for dropout feeding BatchNorm, from its published summary.

    The placement's own cost where it is one the deep arm measured and every
    rerun separated alike, else the range over those placements, else the
    finding without figures.

    Example:

    >>> study_cost("bn_act_drop").startswith("In kerasreg's quick study")
    True
    """
    costs = {p: c for p in FEEDING_BN if (c := published.agreed_contrast(p)) and c["decision"] == "separated"
             and c["difference_points"] < 0}
    head = "In kerasreg's quick study (deep arm, replicated on other seeds and on TensorFlow)"
    if placement in costs:
        c = costs[placement]
        high, low = (-v for v in c["interval_points"])
        return (f"{head} `{placement}` cost {-c['difference_points']:.1f} points against BatchNorm alone "
                f"({100 * c['confidence']:.1f}% CI {low:.1f} to {high:.1f})")
    if costs:
        points = sorted(-c["difference_points"] for c in costs.values())
        return (f"{head} dropout feeding BatchNorm cost {points[0]:.1f}-{points[-1]:.1f} points against BatchNorm "
                "alone")
    return "In kerasreg's quick study dropout feeding BatchNorm cost accuracy against BatchNorm alone"


def verdict(diagnosis):
    """The verdict sentences of a `Diagnosis`, most important first.

    Example:

    >>> verdict(kerasreg.diagnose(model, data))  # doctest: +SKIP
    ['Dropout feeds BatchNorm on 2 paths (drop_1 -> bn_2, ...)', ...]
    """
    sentences = [structure_sentence(diagnosis.structure), _shift_sentence(diagnosis.variance_shift),
                 _reestimation_sentence(diagnosis), _advice(diagnosis), _gap_sentence(diagnosis)]
    return [s for s in sentences if s]


_PART_WHY = {
    "weight_drift": "`fit` averages its metric over the epoch while the weights move; `evaluate` sees only the "
                    "final weights",
    "dropout_noise": "dropout is on while `fit` measures, off in `evaluate`",
    "batch_statistics": "`fit` normalises each batch of {batch_size} with that batch's statistics, `evaluate` "
                        "with the moving ones",
}
_PART_ABSENT = {"dropout_noise": "the model has no dropout-kind layer",
                "batch_statistics": "the model has no BatchNormalization layer"}
PART_TITLES = {"weight_drift": "weight drift", "dropout_noise": "dropout noise",
               "batch_statistics": "BatchNorm batch vs moving statistics"}


def _amount(value, metric):
    return f"{_points(value):+.1f} points" if metric == "accuracy" else f"{value:+.4g} loss"


def gap_part_lines(gap_parts):
    """One line for the fit-vs-evaluate gap, then one per part: the answer to "fit() says 87%, evaluate() 63%".

    Example:

    >>> gap_part_lines(kerasreg.diagnose(model, data).gap_parts)[2]  # doctest: +SKIP
    'dropout noise: -14.0 points (58% of the gap): dropout is on while `fit` measures, off in `evaluate`'
    """
    metric, levels = gap_parts.metric, gap_parts.levels
    shown = (lambda v: f"{v:.1%}") if metric == "accuracy" else (lambda v: f"a loss of {v:.4g}")
    lines = [f"`fit` reports {shown(levels['fit'][metric])} over one more epoch of {gap_parts.rows:,} training rows "
             f"({plural(gap_parts.steps, 'step')} of {gap_parts.optimizer}), `evaluate` gives "
             f"{shown(levels['evaluate'][metric])} on the same rows: {_amount(gap_parts.gap[metric], metric)}, in three "
             "parts."]
    for part in gap_parts:
        title = PART_TITLES[part.name]
        if not part.measured:
            lines.append(f"{title}: 0 ({_PART_ABSENT[part.name]}).")
            continue
        share = f"{part.share:.0%} of the gap" if part.share is not None else "no gap to share"
        value = part.accuracy if metric == "accuracy" else part.loss
        why = _PART_WHY[part.name].format(batch_size=gap_parts.batch_size)
        lines.append(f"{title}: {_amount(value, metric)} ({share}): {why}.")
    return lines
