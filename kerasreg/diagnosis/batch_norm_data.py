"""The BatchNorm audit's measures on data: moving against precise statistics, and accuracy against batch size.

- **Stale statistics** (the EMA's lag; Wu & Johnson, "Rethinking 'Batch' in
  BatchNorm", 2021): the moving mean and variance are an exponential moving
  average over training batches, taken while the weights moved; the precise
  statistics are the population statistics of the training split under the
  final weights (`reestimate_batch_norm`, on a copy). Per channel, inference
  with the moving statistics turns the training data into outputs of mean
  `m = (mu_precise - mu_moving) / sigma_moving` and standard deviation
  `s = sigma_precise / sigma_moving` instead of 0 and 1; the layer's
  distance is the root mean square over channels of `sqrt(m**2 + (s - 1)**2)`
  (the 2-Wasserstein distance of N(m, s**2) from N(0, 1)), in units of the
  normalised output's standard deviation. Above `LAG_THRESHOLD` it is a
  finding.
- **Batch size**: argmax accuracy of training-mode outputs (batch statistics,
  dropout on, as `fit` computes them) over the same training rows at batch
  sizes 8, 32 and the user's. Dropout's noise is the same at every batch size,
  so a difference between them is BatchNorm's: the user's batch (else
  `fit`'s default, 32) `BATCH_POINTS` or more below the best of them, and
  beyond two standard errors of the difference on those rows, is a finding.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kerasreg._text import plural
from kerasreg.diagnosis.batch_norm_finding import BatchNormFinding
from kerasreg.training.evaluator import training_evaluators
from kerasreg.training.reestimate import copy_model, reestimate_batch_norm
from kerasreg.training.variance_shift import batch_norm_layers

# Half a standard deviation of the normalised output is what dropout's variance shift costs at rate 0.5 (the variance
# halves: s = 0.71); a tenth is far beyond what a converged model's moving average lags by.
LAG_THRESHOLD = 0.1
BATCH_SIZES = (8, 32)
FIT_BATCH = 32  # `fit`'s default batch: judged when the user's is not known
BATCH_ROWS = 512  # training rows of the batch-size check: every batch size sees the same ones
BATCH_POINTS = 5.0
_REESTIMATE = "re-estimate (`kerasreg.reestimate_batch_norm(model, data)`)"


def _values(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float64)


def lag_distance(layer, precise):
    """The distance of `layer`'s moving statistics from `precise`'s (its re-estimated twin), with `m` and `s`.

    Example:

    >>> lag_distance(bn, bn)[0]  # doctest: +SKIP
    0.0
    """
    mean, variance = _values(layer.moving_mean), _values(layer.moving_variance) + layer.epsilon
    true_mean, true_variance = _values(precise.moving_mean), _values(precise.moving_variance) + layer.epsilon
    m = (true_mean - mean) / np.sqrt(variance)
    s = np.sqrt(true_variance / variance)
    return float(np.sqrt(np.mean(m ** 2 + (s - 1.0) ** 2))), float(np.sqrt(np.mean(m ** 2))), float(np.median(s))


def stale_statistics(model, x, *, batch_size=1000, precise=None):
    """A `"stale statistics"` finding for every BatchNormalization whose distance exceeds `LAG_THRESHOLD`, worst first.

    The precise statistics come from `reestimate_batch_norm` on a copy
    (inference mode, dropout off, the layers before each one re-estimated
    first); `model` is untouched. `precise`: that copy, if already made
    (`reestimate_batch_norm(model, x)`), else None.

    Example:

    >>> [f.layer for f in stale_statistics(model, x_train)]  # doctest: +SKIP
    ['batch_normalization_1']
    """
    if precise is None:
        precise = reestimate_batch_norm(model, x, batch_size=batch_size)
    measured = [(layer, *lag_distance(layer, twin))
                for layer, twin in zip(batch_norm_layers(model), batch_norm_layers(precise))]
    findings = []
    for layer, distance, shift, scale in sorted(measured, key=lambda item: -item[1]):
        if distance > LAG_THRESHOLD:
            findings.append(BatchNormFinding(
                layer.name, "stale statistics",
                f"{layer.name}'s moving statistics are {distance:.2f} standard deviations from the precise "
                f"statistics of the training data (its inference outputs there are off-centre by {shift:.2f} and "
                f"scaled by {scale:.2f}, median over channels)", _REESTIMATE))
    return findings


def training_passes(model):
    """Batch size -> a training-mode `Evaluator` on a copy of `model` (made once), each compiled once.

    Training mode updates the moving statistics on TensorFlow, hence the
    copy. The copy is compiled with a loss only because `Evaluator` computes
    one: the audit reads its accuracy alone.

    Example:

    >>> training_passes(model)(8).evaluate(x[:64], y[:64])  # doctest: +SKIP
    (1.93, 0.41)
    """
    copy = copy_model(model)
    copy.compile(loss="sparse_categorical_crossentropy")
    return training_evaluators(copy)


def _noisiest(model, batch_size):
    """The BatchNormalization with the fewest values per channel in a batch (`batch_size` x its spatial size)."""
    def per_batch(layer):
        shape = [d for i, d in enumerate(layer.input.shape[1:], 1) if i != layer.axis % len(layer.input.shape)]
        return batch_size * int(np.prod([d or 1 for d in shape]))

    try:
        return min(((per_batch(layer), layer.name) for layer in batch_norm_layers(model) if layer.trainable))
    except (AttributeError, ValueError):  # a layer called more than once has no single input shape
        return None


def _noise(first, second, rows):
    """Two standard errors, in points, of the difference of two accuracies measured on `rows` rows each."""
    return 200.0 * math.sqrt((first * (1.0 - first) + second * (1.0 - second)) / rows)


def batch_size_accuracy(model, x, y, *, batch_size=None, accuracy_at=None):
    """Training-mode accuracy at batch sizes 8, 32 and `batch_size`, and a `"batch size"` finding (or note).

    A problem when the accuracy at `batch_size` (None: 32, `fit`'s default)
    is 5 points or more below the best of them, and more than two standard
    errors of the difference on these rows (binomial, as if the two were
    measured independently: on a few hundred rows, a drop of 5 points can be
    chance); else a note with the numbers. Measured on the first
    `BATCH_ROWS` rows of `x`, `y` (or `batch_size`, if larger), in whole
    batches of each size. `accuracy_at`: a callable, batch size -> the
    training-mode accuracy over the whole batches of all of `x`, `y`
    (`diagnose` shares its passes with the reported gap's this way); None
    compiles passes on a copy of `model`.

    Training vs inference: training mode is what `fit` runs, so these are the
    accuracies `fit` would log at each batch size with these weights; no
    weight or statistic of `model` changes (the passes run on a copy).

    Returns:
        Tuple `(accuracies, finding)`: `{batch size: accuracy}` and the
        finding, or `({}, None)` for a model whose BatchNormalization layers
        are all frozen, a non-classifier, or labels that are not class indices.

    Example:

    >>> batch_size_accuracy(model, x_train, y_train, batch_size=100)[0]  # doctest: +SKIP
    {8: 0.71, 32: 0.86, 100: 0.88}
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[-1] > 1:
        y = np.argmax(y, axis=-1)
    if (not any(layer.trainable for layer in batch_norm_layers(model)) or model.outputs[0].shape[-1] in (None, 1)
            or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer)):
        return {}, None
    if accuracy_at is None:
        rows = min(len(x), max(BATCH_ROWS, batch_size or 0))
        x, y, passes = x[:rows], y[:rows], training_passes(model)

        def accuracy_at(size):
            # Whole batches only: a padded one would enter BatchNorm's batch statistics.
            return passes(size).evaluate(x[:rows // size * size], y[:rows // size * size])[1]
    rows = len(y)
    sizes = sorted({b for b in (*BATCH_SIZES, batch_size) if b is not None and b <= rows})
    if len(sizes) < 2:
        return {}, None
    accuracies = {b: accuracy_at(b) for b in sizes}
    judged = batch_size if batch_size in accuracies else FIT_BATCH
    best = max(accuracies.values())
    drop, noise = 100.0 * (best - accuracies[judged]), _noise(best, accuracies[judged], rows)
    listed = ", ".join(f"{accuracies[b]:.1%} at {b}" for b in sizes)
    noisiest = _noisiest(model, judged)
    layer = noisiest[1] if noisiest else batch_norm_layers(model)[0].name
    text = f"training-mode accuracy on {rows} training rows is {listed}"
    if drop >= max(BATCH_POINTS, noise):
        where = f"; the noisiest batch statistics are {noisiest[1]}'s ({plural(noisiest[0], 'value')} per " \
            "channel)" if noisiest else ""
        return accuracies, BatchNormFinding(
            layer, "batch size", f"{text}: batch statistics of {judged} rows cost {drop:.1f} points{where}",
            "train with a larger batch, or replace BatchNorm by GroupNorm (`kerasreg.set_batch_norm(model, "
            "norm=\"group\")`), which does not depend on the batch")
    if drop >= BATCH_POINTS:
        fix = (f"{drop:.1f} points fewer at {judged} rows per batch is within the noise of {rows} rows (a drop under "
               f"{noise:.1f} points is); measure on more rows to tell")
    else:
        fix = f"BatchNorm's batch statistics hold at {plural(judged, 'row')} per batch"
        smallest = 100.0 * (best - accuracies[sizes[0]])
        if smallest >= max(BATCH_POINTS, _noise(best, accuracies[sizes[0]], rows)):
            fix += f"; at {sizes[0]} they would cost {smallest:.1f} points (keep the batch when fine-tuning)"
    return accuracies, BatchNormFinding(layer, "batch size", text, fix, problem=False)
