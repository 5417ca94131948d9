"""The BatchNorm audit that needs no data: what a model's BatchNormalization weights say about its statistics.

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
  inside `fit`, with its moving statistics, which it never updates (the
  transfer-learning guide's advice for a frozen backbone);
- the momentum's horizon, `1 / (1 - momentum)` steps: the moving statistics
  average over about that many recent batches, so a model trained for fewer
  steps keeps part of its initial statistics.

What needs data is said too: whether the moving statistics match the data
(variance shift, re-estimation), and how outputs depend on the batch size.

Example:

>>> findings = audit_batch_norm(keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3)))
>>> findings[0].kind
'never updated'
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from kerasreg import _checks
from kerasreg._text import plural
from kerasreg.diagnosis.structure import find_structure
from kerasreg.diagnosis.verdict import structure_sentence
from kerasreg.training.variance_shift import batch_norm_layers

DEAD_SCALE = 1e-3  # |gamma| below this: the channel's normalised input no longer reaches the output
VARIANCE_RANGE = (1e-6, 1e6)
NEEDS_DATA = ("Without data the audit cannot tell whether the moving statistics match the data the model sees "
              "(variance shift, re-estimation) or how its outputs depend on the batch size: pass --dataset.")


@dataclasses.dataclass(frozen=True)
class BatchNormFinding:
    """One thing the audit found in one BatchNormalization layer.

    Fields:
        layer: str. The layer's name (nested models' layers by their own names).
        kind: str. `"never updated"`, `"dead channels"`, `"extreme variance"`, `"frozen"` or `"momentum"`.
        text: str. What was found, with its numbers.
        fix: str. What to do about it.

    Example:

    >>> BatchNormFinding("bn", "frozen", "bn is frozen", "call it with training=False").kind
    'frozen'
    """

    layer: str
    kind: str
    text: str
    fix: str

    def sentence(self):
        """The finding and its fix in one sentence."""
        return f"{self.text}: {self.fix}."


def _never_updated(layer, mean, variance):
    if np.all(mean == 0) and np.all(variance == 1):
        return BatchNormFinding(
            layer.name, "never updated",
            f"{layer.name} still holds its initial statistics (every moving mean 0, every moving variance 1)",
            "re-estimate them on the training data (`kerasreg.reestimate_batch_norm(model, data)`)")
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
        "that is what a frozen backbone wants; call the backbone with training=False so that unfreezing it later "
        "keeps it that way")


def _momentum(layers):
    first = layers[0]
    horizon = 1.0 / (1.0 - first.momentum) if first.momentum < 1 else float("inf")
    who = first.name if len(layers) == 1 else f"{plural(len(layers), 'BatchNormalization layer')} (first {first.name})"
    return BatchNormFinding(
        first.name, "momentum",
        f"{who} average their statistics over about {horizon:.0f} steps (momentum {first.momentum:g})"
        if len(layers) > 1 else f"{who} averages its statistics over about {horizon:.0f} steps "
        f"(momentum {first.momentum:g})",
        "trained for fewer steps than that, the moving statistics still hold part of their initial values: "
        "re-estimate them or lower the momentum")


def audit_batch_norm(model: keras.Model) -> list[BatchNormFinding]:
    """Audit every BatchNormalization layer of a model from its weights alone, no data needed.

    Returns the findings, problems first (never updated, dead channels,
    extreme variances, frozen layers), then one momentum finding per
    distinct momentum (its horizon, which only data and the steps trained
    can check). An empty list means the model has no BatchNormalization.

    Args:
        model: a built `keras.Model`, nested models included.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(name="bn")])
    >>> [f.kind for f in audit_batch_norm(model)]
    ['never updated', 'momentum']
    """
    if not isinstance(model, keras.Model):
        raise _checks.invalid("model", "a keras.Model", received=type(model).__name__)
    layers = batch_norm_layers(model)
    problems, horizons = [], {}
    for layer in layers:
        mean = np.asarray(keras.ops.convert_to_numpy(layer.moving_mean))
        variance = np.asarray(keras.ops.convert_to_numpy(layer.moving_variance))
        problems += [f for f in (_never_updated(layer, mean, variance), _dead_channels(layer),
                                 _extreme_variance(layer, variance), _frozen(layer)) if f]
        horizons.setdefault(layer.momentum, []).append(layer)
    return problems + [_momentum(group) for group in horizons.values()]


def audit_sentences(findings):
    """The audit in a few sentences: one per kind of finding, the layers it names first.

    Example:

    >>> audit_sentences([])
    ['The model has no BatchNormalization layer: nothing to audit.']
    """
    if not findings:
        return ["The model has no BatchNormalization layer: nothing to audit."]
    groups = {}
    for finding in findings:
        groups.setdefault(finding.kind, []).append(finding)
    sentences = []
    for kind, members in groups.items():
        if len(members) == 1 or kind == "momentum":
            sentences += [f.sentence() for f in members]
            continue
        names = ", ".join(f.layer for f in members[:3]) + (", ..." if len(members) > 3 else "")
        sentences.append(f"{plural(len(members), 'BatchNormalization layer')} ({names}): {kind}, e.g. "
                         f"{members[0].sentence()}")
    return sentences


def without_data(model):
    """What can be said of a model with no data: where dropout meets BatchNorm, the audit, and what needs data.

    Example:

    >>> without_data(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))[-1].startswith("Without data")
    True
    """
    return [structure_sentence(find_structure(model)), *audit_sentences(audit_batch_norm(model)), NEEDS_DATA]
