"""The BatchNorm audit: what a model's BatchNormalization layers say about their statistics, with and without data.

A BatchNormalization layer normalises with its moving mean and variance at
inference. Their values, its scale (gamma), its momentum and whether it is
frozen are in the model file, so some problems show without a single input
row:

- statistics never updated: every moving mean 0 and every moving variance 1,
  the initial values, so inference normalises as if the input had mean 0 and
  variance 1 (a model saved before training, or trained with the layer
  frozen from the start);
- dead channels: a scale near 0, so the channel passes only its offset on;
- extreme moving variances (below 1e-6 or above 1e6): inference divides by
  the square root of a value that small or large;
- a frozen layer (`trainable=False`): Keras 3 runs it in inference mode even
  inside `fit`, with its moving statistics, which it never updates (a note:
  the transfer-learning guide's advice for a frozen backbone);
- the momentum's horizon, `1 / (1 - momentum)` steps: the moving statistics
  average over about that many recent batches, so a model trained for fewer
  steps keeps part of its initial statistics (`momentum ** steps` of them).
  The steps trained are given, or read from the optimizer a `.keras` file
  saved with the model (its `iterations`); without them it is a note;
- fine-tuning graphs: a nested backbone whose BatchNorm runs in the wrong
  mode during `fit` (`fine_tuning.py`).

With data (the training split), `batch_norm_data.py` measures the moving
statistics against the precise statistics of the data (the EMA's lag; Wu &
Johnson, "Rethinking 'Batch' in BatchNorm", 2021) and the accuracy of
training-mode outputs at batch sizes 8, 32 and the user's.

Example:

>>> findings = audit_batch_norm(keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3)))
>>> findings[0].kind
'never updated'
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import keras
import numpy as np
from numpy.typing import ArrayLike

from kerasreg import _checks
from kerasreg._text import plural
from kerasreg.diagnosis.batch_norm_data import batch_size_accuracy, stale_statistics
from kerasreg.diagnosis.batch_norm_finding import BatchNormFinding
from kerasreg.diagnosis.fine_tuning import fine_tuning_findings
from kerasreg.diagnosis.structure import find_structure
from kerasreg.diagnosis.verdict import structure_sentence
from kerasreg.training.variance_shift import batch_norm_layers

if TYPE_CHECKING:
    from kerasreg.data.dataset import Dataset

DEAD_SCALE = 1e-3  # |gamma| below this: the channel's normalised input no longer reaches the output
VARIANCE_RANGE = (1e-6, 1e6)
NEEDS_DATA = ("Without data the audit cannot tell whether the moving statistics match the data the model sees "
              "(variance shift, re-estimation) or how its outputs depend on the batch size: pass --dataset.")
_REESTIMATE = "re-estimate them on the training data (`kerasreg.reestimate_batch_norm(model, data)`)"


def _never_updated(layer, mean, variance):
    if np.all(mean == 0) and np.all(variance == 1):
        return BatchNormFinding(
            layer.name, "never updated",
            f"{layer.name} still holds its initial statistics (every moving mean 0, every moving variance 1)",
            _REESTIMATE)
    return None


def _dead_channels(layer):
    if layer.gamma is None:
        return None
    gamma = np.abs(np.asarray(keras.ops.convert_to_numpy(layer.gamma)))
    dead = int(np.sum(gamma < DEAD_SCALE))
    if not dead:
        return None
    return BatchNormFinding(
        layer.name, "dead channels",
        f"{layer.name} has {plural(dead, 'channel')} of {gamma.size} with a scale below {DEAD_SCALE:g}",
        "those channels pass only their offset on; with many of them, check the learning rate and weight decay")


def _extreme_variance(layer, variance):
    low, high = VARIANCE_RANGE
    extreme = int(np.sum((variance < low) | (variance > high)))
    if not extreme:
        return None
    return BatchNormFinding(
        layer.name, "extreme variance",
        f"{layer.name} has {plural(extreme, 'moving variance')} outside {low:g}-{high:g} (from {variance.min():.3g} "
        f"to {variance.max():.3g})",
        "re-estimate the statistics on the training data, and check the inputs' scale")


def _frozen(layer):
    if layer.trainable:
        return None
    return BatchNormFinding(
        layer.name, "frozen",
        f"{layer.name} is frozen (trainable=False), so Keras runs it in inference mode even inside fit, with "
        "moving statistics it never updates",
        "that is what a frozen backbone wants; when you unfreeze the backbone, keep its BatchNormalization layers "
        "frozen if they should keep their statistics", problem=False)


def _momentum(layers, steps_trained, stale=None):
    first = layers[0]
    horizon = 1.0 / (1.0 - first.momentum) if first.momentum < 1 else math.inf
    many = len(layers) > 1
    who = f"{plural(len(layers), 'BatchNormalization layer')} (first {first.name})" if many else first.name
    averages = (f"{who} {'average their' if many else 'averages its'} statistics over about {horizon:.0f} steps "
                f"(momentum {first.momentum:g})")
    if steps_trained is None:
        return BatchNormFinding(
            first.name, "momentum", averages,
            "trained for fewer steps than that, the moving statistics still hold part of their initial values: "
            "re-estimate them or lower the momentum", problem=False)
    if horizon <= steps_trained:
        return None
    kept = first.momentum ** steps_trained
    text = (f"{averages}, more than the {steps_trained} steps trained: {kept:.0%} of their values are still those "
            "they had when training started")
    if stale is not None and not any(layer.name in stale for layer in layers):
        return BatchNormFinding(first.name, "momentum", text, "yet they match the training data (their starting "
                                "values were close, as a pretrained model's are)", problem=False)
    return BatchNormFinding(
        first.name, "momentum", text,
        f"{_REESTIMATE}, or lower the momentum (`kerasreg.set_batch_norm(model, momentum=0.9)`) and train again")


def steps_of(model):
    """The training steps a model's optimizer counted (`optimizer.iterations`), or None (no optimizer, or 0).

    A `.keras` file saved after `fit` holds its optimizer and that count:
    the steps since the last `compile`.

    Example:

    >>> steps_of(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])) is None
    True
    """
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    steps = 0 if iterations is None else int(keras.ops.convert_to_numpy(iterations))
    return steps or None


def steps_from_manifest(manifest, rows):
    """Steps trained by a kerasreg run, from its manifest: `ceil(rows / batch_size)` per epoch up to the exported one.

    Example:

    >>> steps_from_manifest({"training": {"batch_size": 100}, "metrics": {"best_epoch": 3}}, 1000)
    30
    """
    training, metrics = (manifest or {}).get("training") or {}, (manifest or {}).get("metrics") or {}
    epochs = metrics.get("best_epoch") or metrics.get("epochs_run") or training.get("epochs_run")
    if not epochs or not training.get("batch_size") or not rows:
        return None
    return int(epochs) * math.ceil(rows / int(training["batch_size"]))


def _data_of(data):
    """`(x, y or None)` training rows from a kerasreg `Dataset`, a tuple `(x, y)` or an array `x`."""
    if hasattr(data, "as_numpy"):
        return data.as_numpy("train")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
    else:
        x, y = np.asarray(data), None
    if x.ndim == 0 or not len(x) or (y is not None and len(y) != len(x)):
        raise _checks.invalid("data", "a kerasreg `Dataset`, a tuple `(x, y)` of training rows with one label per "
                              "row, or a non-empty array `x`", received=f"data={type(data).__name__} of "
                              f"{0 if x.ndim == 0 else len(x)} rows")
    return x, y


def _check_inputs(model, x):
    expected = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None
    got = tuple(x.shape[1:])
    if expected is None or len(expected) != len(got) or any(e not in (None, g) for e, g in zip(expected, got)):
        raise _checks.invalid("data", f"training inputs of shape {expected} (without the batch axis), as model "
                              f"{model.name!r} takes", received=f"inputs of shape {got}")


def audit_batch_norm(
    model: keras.Model, data: Dataset | tuple[ArrayLike, ArrayLike] | None = None, *,
    batch_size: int | None = None, steps_trained: int | None = None,
) -> list[BatchNormFinding]:
    """Audit every BatchNormalization layer of a model: from its weights and graph, and with data, on the data.

    Without data: statistics never updated, dead channels, extreme moving
    variances, frozen layers (a note), each distinct momentum against the
    steps trained, and nested backbones whose BatchNorm runs in the wrong
    mode during fine-tuning. With `data` (the training split) also: each
    layer's moving statistics against the precise statistics of the data
    (`"stale statistics"`, at a distance above 0.1 standard deviations of
    its normalised output), and the accuracy of training-mode outputs at
    batch sizes 8, 32 and `batch_size` (`"batch size"`: a drop of 5 points
    or more at a small batch, beyond the noise of the rows). `model` is never
    modified: the measures run on copies.

    Training vs inference: inference normalises with the moving statistics,
    `fit` with each batch's; the audit measures both on the same rows.

    Returns the problems first (each with `problem=True`), then the notes.
    An empty list means the model has no BatchNormalization.

    Args:
        model: keras.Model. A built model, nested models included.
        data: a kerasreg `Dataset` (its train split), a tuple `(x, y)` of
            training rows, an array `x` (no batch-size check without labels),
            or None for the data-free audit. Defaults to `None`.
        batch_size: int or None. The batch `fit` trained with: judged for
            fine-tuning backbones and measured beside 8 and 32. Defaults to
            `None` (unknown).
        steps_trained: int or None. Training steps the moving statistics had;
            None: the steps the model's optimizer counted, if it has one
            (a `.keras` file saved after `fit`), else unknown. Defaults to `None`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(name="bn")])
    >>> [f.kind for f in audit_batch_norm(model)]
    ['never updated', 'momentum']
    >>> [f.kind for f in audit_batch_norm(model, steps_trained=50)]
    ['never updated', 'momentum']
    """
    return audit_with_precise(model, data, batch_size=batch_size, steps_trained=steps_trained)


def audit_with_precise(model, data=None, *, batch_size=None, steps_trained=None, precise=None, batch_check=None):
    """`audit_batch_norm`, given `precise`: `model` with its statistics already re-estimated on `data`'s inputs.

    `diagnose` re-estimates them anyway (`reestimate_batch_norm` on its
    copy); passing that copy spares the audit the same forward pass. None
    re-estimates them on a copy of its own. `batch_check`: the batch-size
    check's rows and how to measure them, `((x, y), accuracy_at)` as
    `batch_size_accuracy` takes them (`diagnose` passes the reported gap's
    rows and passes); None checks the first rows of `data` on a copy.

    Example:

    >>> audit_with_precise(model, (x, y), precise=kerasreg.reestimate_batch_norm(model, x))  # doctest: +SKIP
    """
    if not isinstance(model, keras.Model):
        raise _checks.invalid("model", "a keras.Model", received=type(model).__name__)
    if batch_size is not None:
        batch_size = _checks.positive_int(batch_size, "batch_size")
    steps_trained = steps_of(model) if steps_trained is None else _checks.positive_int(steps_trained,
                                                                                         "steps_trained")
    rows = None if data is None else _data_of(data)
    layers = batch_norm_layers(model)
    if not layers:
        return []
    if rows is not None:
        _check_inputs(model, rows[0])
    findings, horizons = [], {}
    for layer in layers:
        mean = np.asarray(keras.ops.convert_to_numpy(layer.moving_mean))
        variance = np.asarray(keras.ops.convert_to_numpy(layer.moving_variance))
        findings += [f for f in (_never_updated(layer, mean, variance), _dead_channels(layer),
                                 _extreme_variance(layer, variance), _frozen(layer)) if f]
        horizons.setdefault(layer.momentum, []).append(layer)
    stale = [] if rows is None else stale_statistics(model, rows[0], precise=precise)
    stale_layers = None if rows is None else {f.layer for f in stale}
    findings += [f for group in horizons.values() if (f := _momentum(group, steps_trained, stale_layers))]
    findings += fine_tuning_findings(model, batch_size=batch_size) + stale
    if rows is not None and rows[1] is not None:
        (x, y), accuracy_at = batch_check or (rows, None)
        finding = batch_size_accuracy(model, x, y, batch_size=batch_size, accuracy_at=accuracy_at)[1]
        findings += [finding] if finding else []
    return [f for f in findings if f.problem] + [f for f in findings if not f.problem]


def audit_sentences(findings, layers=None):
    """The audit in a few sentences: one per kind of finding, the layers it names first, problems before notes.

    Args:
        findings: list of `BatchNormFinding`, as `audit_batch_norm` returns them.
        layers: int or None. How many BatchNormalization layers were audited,
            so that a model with nothing to report is told from one without
            BatchNorm. Defaults to `None` (as many as the findings show: none
            when there are no findings).

    Example:

    >>> audit_sentences([])
    ['The model has no BatchNormalization layer: nothing to audit.']
    >>> audit_sentences([], layers=3)
    ['The BatchNorm audit found no problem in 3 BatchNormalization layers.']
    """
    if not findings and not layers:
        return ["The model has no BatchNormalization layer: nothing to audit."]
    head = []
    if not any(f.problem for f in findings):
        counted = f" in {plural(layers, 'BatchNormalization layer')}" if layers else ""
        head = [f"The BatchNorm audit found no problem{counted}."]
    groups = {}
    for finding in findings:
        groups.setdefault(finding.kind, []).append(finding)
    sentences = []
    for kind, members in groups.items():
        if len(members) == 1 or kind in ("momentum", "fine-tuning"):
            sentences += [f.sentence() for f in members]
            continue
        names = ", ".join(f.layer for f in members[:3]) + (", ..." if len(members) > 3 else "")
        sentences.append(f"{plural(len(members), 'BatchNormalization layer')} ({names}): {kind}, e.g. "
                         f"{members[0].sentence()}")
    return head + sentences


def without_data(model):
    """What can be said of a model with no data: where dropout meets BatchNorm, the audit, and what needs data.

    Example:

    >>> without_data(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))[-1].startswith("Without data")
    True
    """
    return [structure_sentence(find_structure(model)),
            *audit_sentences(audit_batch_norm(model), len(batch_norm_layers(model))), NEEDS_DATA]
