"""Paired comparisons of study configurations against a fixed reference, with intervals that make the decision.

In a study, every configuration of one seed trains on the same train /
validation split and sees the training batches in the same order (both come
from the run's seed). Two configurations are therefore compared *paired by
seed*: the unit of evidence is the per-seed difference, which removes the
split-to-split variation that an unpaired test would count as noise.

The contrasts are fixed before any run: within each group, one reference
configuration against every other one. Each contrast gets the mean paired
difference (other - reference) and a Student's t interval over the per-seed
differences at the Bonferroni level `1 - alpha / k`, where `k` is the number
of intervals that share `alpha` (the family's contrasts times its looks at
the data). The decision is read off that interval and nothing else:

- *separated*: the interval excludes zero (the same as a paired t-test with
  Bonferroni-adjusted p-value below `alpha`);
- *level*: the interval lies inside `(-margin, +margin)`: two one-sided tests
  (TOST, Schuirmann 1987), each at level `alpha / (2k)`, show the difference is
  smaller than the declared equivalence margin;
- *not separated*: neither; the line says how many seeds it had.

So "separated" holds exactly when the printed interval excludes zero. A wrong
claim of either kind needs an interval that misses the true difference, and
by Bonferroni's inequality the chance that any of the `k` intervals misses is
at most `alpha`: the family-wise error rate of every claim together, under any
dependence between the contrasts (`tests/test_answer_simulation.py` measures it).

When every seed gives the same difference (test accuracies are multiples of
1 / test size, so this happens) the t interval is undefined; the sign test's
interval is used instead: that one value when n equal signs are rare enough
(`2 / 2**n` at most the interval's level), else unbounded.

Schuirmann, D. J. (1987). A comparison of the two one-sided tests procedure and the power approach for
assessing the equivalence of average bioavailability. J. Pharmacokinetics and Biopharmaceutics 15, 657-680.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from kerasreg import _checks
from kerasreg._text import plural
from kerasreg.analysis.plots import CONFIG_KEYS
from kerasreg.models import get_placement


# Metrics that are fractions: differences are quoted in percentage points.
FRACTIONS = ("test_accuracy", "test_accuracy_reestimated", "val_accuracy", "clean_gap", "reported_gap")
ALPHA = 0.05
MAX_SEEDS = 1_000
SEPARATED, LEVEL, NOT_SEPARATED, NOT_TESTABLE = "separated", "level", "not separated", "not testable"
DECISIONS = (SEPARATED, LEVEL, NOT_SEPARATED, NOT_TESTABLE)
METHOD = ("paired by seed; Student's t intervals at the Bonferroni level; separated when the interval excludes 0, "
          "level when it lies inside the equivalence margin (two one-sided tests)")


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """One configuration against its group's reference, paired by seed.

    Fields:
        metric: str. The compared metric, e.g. `"test_accuracy"`.
        group: str. What the comparison is within, e.g. the architecture `"mlp"`.
        reference: str. Label of the group's reference configuration.
        other: str. Label of the configuration compared with it.
        n_pairs: int. Seeds both configurations completed.
        mean_difference: float. Mean over seeds of `other - reference`.
        ci_low, ci_high: float. The interval of that mean at `confidence` (NaN under 2 pairs).
        confidence: float. The interval's level, `1 - alpha / k` for `k` intervals sharing `alpha`.
        decision: str. `"separated"`, `"level"`, `"not separated"` or `"not testable"` (under 2 pairs).
        seeds_needed: int or None. Seeds at which the interval, with the spread observed and the same
            level, would decide the contrast (exclude zero, or fit inside the margin); None when no
            number up to 1,000 would, or under 2 pairs.
        margin: float or None. The equivalence margin; None: no contrast is called level.
        p_value: float. Two-sided paired t-test (sign test for identical differences); NaN under 2 pairs.
        p_adjusted: float. `min(1, k * p_value)`: below `alpha` exactly when the decision is separated.

    Example:

    >>> c = PairedComparison("test_accuracy", "mlp", "bn_before_act", "ic", 5, 0.02, 0.01, 0.03, 0.99,
    ...                      "separated", 5)
    >>> c.distinguishable
    True
    """

    metric: str
    group: str
    reference: str
    other: str
    n_pairs: int
    mean_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    decision: str
    seeds_needed: object
    margin: object = None
    p_value: float = float("nan")
    p_adjusted: float = float("nan")

    @property
    def distinguishable(self):
        """True when the interval excludes zero."""
        return self.decision == SEPARATED

    @property
    def level(self):
        """True when the interval lies inside the equivalence margin."""
        return self.decision == LEVEL


def default_label(row):
    """`"placement / dropout rate / norm"` of a row: how a configuration is named within its architecture.

    Example:

    >>> default_label({"placement": "ic", "dropout": "standard", "dropout_rate": 0.2, "norm": "batch"})
    'ic / standard 0.2'
    """
    text = str(row["placement"])
    if row.get("dropout_rate"):
        text += f" / {row['dropout']} {row['dropout_rate']:g}"
    if row.get("norm") not in ("batch", None) and has_norm_layer_slot(row["placement"]):
        text += f" / norm={row['norm']}"
    return text


def has_norm_layer_slot(placement):
    """True when the placement puts a normalisation layer in its blocks (so the norm kind names a difference).

    Example:

    >>> has_norm_layer_slot("bn_before_act"), has_norm_layer_slot("dropout")
    (True, False)
    """
    try:
        return get_placement(placement).uses_norm
    except ValueError:  # registered in another process: show the norm to be safe
        return True


def _finite(value):
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _by_seed(rows, metric, key_fn):
    """group -> {config key -> {seed: value}}, rejecting two runs of one configuration with one seed."""
    groups = {}
    for row in rows:
        key = key_fn(row)
        per_seed = groups.setdefault(key[0], {}).setdefault(key, {})
        seed = row.get("seed")
        if seed in per_seed:
            raise ValueError(f"Two runs of one configuration {key} share seed {seed}: pairing by seed "
                             "needs one run per configuration and seed.")
        if _finite(row.get(metric)):
            per_seed[seed] = float(row[metric])
    return groups


def _critical(n, confidence):
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def paired_interval(differences, confidence):
    """`(low, high)`: the t interval of the mean paired difference at `confidence`.

    Identical differences give the sign test's interval: the value itself when
    `2 / 2**n <= 1 - confidence`, else `(-inf, inf)`.

    Example:

    >>> low, high = paired_interval([0.02, 0.03, 0.01], 0.95)
    >>> round(low, 4), round(high, 4)
    (-0.0048, 0.0448)
    """
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < 2:
        return float("nan"), float("nan")
    mean, spread = float(np.mean(d)), float(np.std(d, ddof=1))
    if spread <= 1e-12:  # float noise of equal differences, e.g. 0.96 - 0.953 vs 0.962 - 0.955
        return (mean, mean) if 2.0 ** (1 - n) <= 1 - confidence else (-math.inf, math.inf)
    half = _critical(n, confidence) * spread / math.sqrt(n)
    return mean - half, mean + half


def decide(low, high, margin=None):
    """The decision an interval makes: separated, level (inside the margin) or not separated.

    Example:

    >>> decide(-0.031, -0.016), decide(-0.004, 0.006, margin=0.01), decide(-0.012, 0.003, margin=0.01)
    ('separated', 'level', 'not separated')
    """
    if math.isnan(low) or math.isnan(high):
        return NOT_TESTABLE
    if low > 0 or high < 0:
        return SEPARATED
    if margin is not None and -margin < low and high < margin:
        return LEVEL
    return NOT_SEPARATED


def seeds_needed(differences, confidence, margin=None):
    """Seeds at which the interval, with the observed mean and spread, would decide the contrast.

    The smallest n from 2 up at which the interval's half-width at
    `confidence` is below the mean's distance from zero (separated), or below
    its distance from the margin (level). None when no n up to 1,000 would.

    Example:

    >>> seeds_needed([-0.02, -0.03, -0.01], 0.99)
    6
    """
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return None
    mean, spread = abs(float(np.mean(d))), float(np.std(d, ddof=1))
    room = max(mean, (margin - mean) if margin is not None else 0.0)
    if room <= 0:
        return None
    if spread <= 1e-12:
        return next((n for n in range(2, MAX_SEEDS + 1) if 2.0 ** (1 - n) <= 1 - confidence), None)
    # Small sizes first: most answers are below 64, and the t quantile of all 1,000 sizes costs more.
    for low, high in ((2, 64), (64, MAX_SEEDS + 1)):
        sizes = np.arange(low, high)
        half = stats.t.ppf(0.5 + confidence / 2, sizes - 1) * spread / np.sqrt(sizes)
        reached = np.nonzero(half < room)[0]
        if len(reached):
            return int(sizes[reached[0]])
    return None


def compare_pair(reference, other, *, metric="test_accuracy", group="", alpha=ALPHA, intervals=1, margin=None):
    """Compare a configuration with the reference, paired by seed, at the Bonferroni level `1 - alpha / intervals`.

    Args:
        reference: `(label, {seed: value})` of the reference configuration.
        other: `(label, {seed: value})` of the compared one.
        metric: str. Name of the metric. Defaults to `"test_accuracy"`.
        group: str. Group name recorded in the result. Defaults to `""`.
        alpha: float. Family-wise error rate. Defaults to `0.05`.
        intervals: int. How many intervals share `alpha` (contrasts x looks). Defaults to `1`.
        margin: float or None. Equivalence margin in the metric's unit (0.01: one accuracy
            point). Defaults to `None`: no contrast is called level.

    Returns:
        `PairedComparison` of `other - reference`.

    Example:

    >>> c = compare_pair(("a", {0: 0.9, 1: 0.8, 2: 0.85}), ("b", {0: 0.7, 1: 0.61, 2: 0.64}))
    >>> round(c.mean_difference, 2), c.decision
    (-0.2, 'separated')
    """
    alpha = _checks.fraction(alpha, "alpha")
    intervals = _checks.positive_int(intervals, "intervals")
    confidence = 1 - alpha / intervals
    seeds = sorted(set(reference[1]) & set(other[1]), key=str)
    d = np.array([other[1][s] - reference[1][s] for s in seeds])
    n = len(d)
    mean = float(np.mean(d)) if n else float("nan")
    low, high = paired_interval(d, confidence)
    p = _p_value(d)
    return PairedComparison(metric, group, reference[0], other[0], n, mean, low, high, confidence,
                            decide(low, high, margin), seeds_needed(d, confidence, margin), margin,
                            p, min(1.0, p * intervals) if math.isfinite(p) else p)


def _p_value(d):
    if len(d) < 2:
        return float("nan")
    if float(np.std(d, ddof=1)) <= 1e-12:
        return 1.0 if float(np.mean(d)) == 0 else float(stats.binomtest(len(d), len(d)).pvalue)
    t = float(np.mean(d)) / (float(np.std(d, ddof=1)) / math.sqrt(len(d)))
    return float(2 * stats.t.sf(abs(t), len(d) - 1))


def paired_comparisons(
    rows: Iterable[Mapping[str, Any]],
    metric: str | Sequence[str] = "test_accuracy",
    *,
    reference: str | Mapping[str, str],
    group_by: str = "architecture",
    label: Callable[[Mapping[str, Any]], str] = default_label,
    alpha: float = ALPHA,
    margin: float | None = None,
) -> list[PairedComparison]:
    """Within each group, compare the reference with every other configuration, paired by seed.

    The family is every comparison of the call (all metrics and groups): each
    interval is at the Bonferroni level `1 - alpha / family size`, and each
    decision is read off its interval (see the module's docstring).

    Args:
        rows: iterable of dicts, one per run (e.g. `compare_exports(...).rows`), with the
            keys `architecture, placement, dropout, dropout_rate, norm, seed` and the metric(s).
        metric: str or sequence of str. Metric(s) to compare. Defaults to `"test_accuracy"`.
        reference: str, or dict group -> str. The reference's label (`label(row)`), fixed
            before looking at the results, e.g. `"bn_before_act"`.
        group_by: str. Row key whose values form the groups. Defaults to `"architecture"`.
        label: callable row -> str naming a configuration. Defaults to `default_label`.
        alpha: float. Family-wise error rate. Defaults to `0.05`.
        margin: float or None. Equivalence margin (`0.01`: one point of accuracy). Defaults
            to `None`: no configuration is called level.

    Returns:
        list of `PairedComparison`, by metric, group, then label.

    Example:

    >>> rows = [{"architecture": "mlp", "placement": p, "dropout": "standard", "dropout_rate": 0.2,
    ...          "norm": "batch", "seed": s, "test_accuracy": a + 0.01 * s}
    ...         for p, a in (("ic", 0.66), ("dropout", 0.60)) for s in range(3)]
    >>> [(c.reference, c.other, c.n_pairs) for c in paired_comparisons(rows, reference="dropout / standard 0.2")]
    [('dropout / standard 0.2', 'ic / standard 0.2', 3)]
    """
    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    rows = list(rows)
    plans = []
    for name in metrics:
        groups = _by_seed(rows, name, lambda r: (r.get(group_by), *(r.get(k) for k in CONFIG_KEYS)))
        labels = {(r.get(group_by), *(r.get(k) for k in CONFIG_KEYS)): label(r) for r in rows}
        for group in sorted(groups, key=str):
            configs = {labels[k]: v for k, v in groups[group].items() if v}
            wanted = reference if isinstance(reference, str) else reference.get(group)
            if wanted not in configs:
                raise ValueError(f"The reference {wanted!r} has no measured run in group {group!r}. "
                                 f"Configurations there: {', '.join(sorted(configs))}.")
            plans += [(name, group, (wanted, configs[wanted]), (other, configs[other]))
                      for other in sorted(configs) if other != wanted]
    return [compare_pair(ref, other, metric=name, group=str(group), alpha=alpha, intervals=max(1, len(plans)),
                         margin=margin)
            for name, group, ref, other in plans]


def format_difference(metric, value):
    """A difference in the metric's unit: percentage points for fractions.

    Example:

    >>> format_difference("test_accuracy", 0.0582)
    '+5.8 points'
    """
    if not math.isfinite(value):
        return "n/a"
    if metric in FRACTIONS:
        return f"{100 * value:+.1f} points"
    return f"{value:+.3g}"


def level_text(confidence):
    """`"99.4%"`: an interval's level, with a decimal where it is not a whole percentage.

    Example:

    >>> level_text(0.95), level_text(1 - 0.05 / 8)
    ('95%', '99.4%')
    """
    percent = 100 * confidence
    if abs(percent - round(percent)) < 1e-9:
        return f"{percent:.0f}%"
    digits = 1
    while f"{percent:.{digits}f}".startswith("100") and digits < 4:  # 99.97% is not 100%
        digits += 1
    return f"{percent:.{digits}f}%"


def interval_text(c):
    """`"99.4% CI -3.1 to -1.6"`: the interval in the difference's unit, with its level.

    Example:

    >>> c = PairedComparison("test_accuracy", "mlp", "ref", "x", 5, -0.024, -0.031, -0.016, 0.99375, "separated", 5)
    >>> interval_text(c)
    '99.4% CI -3.1 to -1.6'
    """
    low, high = (format_difference(c.metric, v).removesuffix(" points") for v in (c.ci_low, c.ci_high))
    if math.isinf(c.ci_low):
        return f"{level_text(c.confidence)} CI unbounded with {plural(c.n_pairs, 'seed')} of identical differences"
    return f"{level_text(c.confidence)} CI {low} to {high}"


def describe_comparison(c):
    """One sentence that claims only what the interval shows.

    Example:

    >>> c = PairedComparison("test_accuracy", "mlp", "bn_before_act", "ic", 5, 0.004, -0.002, 0.012, 0.95,
    ...                      "not separated", 31, 0.01)
    >>> describe_comparison(c)
    'ic vs bn_before_act: +0.4 points, 95% CI -0.2 to +1.2, not separated with 5 seeds; about 31 seeds would decide it.'
    """
    head = f"{c.other} vs {c.reference}: {format_difference(c.metric, c.mean_difference)}"
    if c.decision == NOT_TESTABLE:
        return f"{head}; not testable with {plural(c.n_pairs, 'shared seed')}."
    head += f", {interval_text(c)}"
    if c.decision == SEPARATED:
        return f"{head}, separated with {c.n_pairs} seeds."
    if c.decision == LEVEL:
        return f"{head}, level within ±{_margin_text(c)} ({c.n_pairs} seeds)."
    text = f"{head}, not separated with {c.n_pairs} seeds"
    if c.seeds_needed is None:
        return text + "; no number of seeds up to 1,000 would decide it at this spread."
    return text + f"; about {c.seeds_needed} seeds would decide it."


def _margin_text(c):
    return format_difference(c.metric, c.margin).lstrip("+")


def comparison_findings(comparisons: Sequence[PairedComparison]) -> list[str]:
    """Finding sentences, one per metric and group: what is separated from the reference, level with it, or neither.

    Example:

    >>> rows = [{"architecture": "mlp", "placement": p, "dropout": "standard", "dropout_rate": 0.2,
    ...          "norm": "batch", "seed": s, "test_accuracy": a + 0.01 * s + 0.003 * (p == "ic") * s}
    ...         for p, a in (("ic", 0.66), ("dropout", 0.60)) for s in range(3)]
    >>> comparison_findings(paired_comparisons(rows, reference="dropout / standard 0.2"))[0]
    'mlp, test accuracy, against dropout / standard 0.2: separated: ic / standard 0.2 (+6.3 points, 95% CI +5.6 to +7.0).'
    """
    lines = []
    seen = {}
    for c in comparisons:
        seen.setdefault((c.metric, c.group), []).append(c)
    for (metric, group), items in seen.items():
        text = f"{group}, {metric.replace('_', ' ')}, against {items[0].reference}"
        parts = []
        for decision, word in ((SEPARATED, "separated"), (LEVEL, "level within ±{margin}"),
                               (NOT_SEPARATED, "not separated with {seeds}")):
            chosen = [c for c in items if c.decision == decision]
            if chosen:
                seeds = plural(max(c.n_pairs for c in chosen), "seed")
                head = word.format(margin=_margin_text(chosen[0]) if chosen[0].margin else "", seeds=seeds)
                parts.append(f"{head}: " + ", ".join(
                    f"{c.other} ({format_difference(metric, c.mean_difference)}, {interval_text(c)}"
                    + (f"; about {c.seeds_needed} seeds would decide it" if decision == NOT_SEPARATED
                       and c.seeds_needed else "") + ")" for c in chosen))
        untestable = [c.other for c in items if c.decision == NOT_TESTABLE]
        if untestable:
            parts.append("not testable (fewer than 2 shared seeds): " + ", ".join(untestable))
        lines.append(f"{text}: {'; '.join(parts)}.")
    return lines
