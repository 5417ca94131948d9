"""Paired comparisons of study configurations: tests, Holm correction, effect sizes and seeds needed.

In a study, every configuration of one seed trains on the same train /
validation split and sees the training batches in the same order (both come
from the run's seed). Two configurations are therefore compared *paired by
seed*: the unit of evidence is the per-seed difference, which removes the
split-to-split variation that an unpaired test would count as noise.

For each comparison this module reports the mean paired difference with its
95% confidence interval (Student's t over the differences), a p-value from a
paired t-test (`scipy.stats.ttest_rel`) or a Wilcoxon signed-rank test
(`scipy.stats.wilcoxon`), the p-value after Holm's correction over every
comparison made together (`statsmodels.stats.multitest.multipletests`), and
the number of seeds a paired t-test would need to separate the pair with 80%
power given the observed paired spread (`statsmodels.stats.power.TTestPower`).

Which test: the paired t-test is the default. The Wilcoxon signed-rank test
assumes less, but with n pairs its smallest two-sided p-value is 2 / 2**n, so
with fewer than 6 seeds it can never reach p < 0.05; use it from 6 seeds up.
When every seed gives the same difference (test accuracies are multiples of
1 / test size, so this happens) the t-test is undefined and a sign test
(`scipy.stats.binomtest`) is used: n equal signs give p = 2 / 2**n.

Holm, S. (1979). A simple sequentially rejective multiple test procedure.
Scandinavian Journal of Statistics 6(2), 65-70.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from kerasreg import _checks
from kerasreg._text import plural
from kerasreg.analysis.plots import CONFIG_KEYS


# metric -> higher is better
DIRECTIONS = {
    "test_accuracy": True,
    "test_accuracy_reestimated": True,
    "val_accuracy": True,
    "clean_gap": False,
    "reported_gap": False,
    "variance_shift_max": False,
    "variance_shift_reestimated": False,
    "train_time": False,
}
# Metrics that are fractions: differences are quoted in percentage points.
FRACTIONS = ("test_accuracy", "test_accuracy_reestimated", "val_accuracy", "clean_gap", "reported_gap")
TESTS = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
SIGN_TEST = "sign test (identical differences)"
ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 10_000


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """One configuration compared with the best of its group, paired by seed.

    Fields:
        metric: str. The compared metric, e.g. `"test_accuracy"`.
        group: str. What the comparison is within, e.g. the architecture `"mlp"`.
        best: str. Label of the best configuration of the group (highest mean,
            or lowest for metrics where lower is better).
        other: str. Label of the configuration compared with it.
        n_pairs: int. Seeds both configurations completed.
        mean_difference: float. Mean over seeds of `best - other`.
        ci_low, ci_high: float. 95% confidence interval of that mean (NaN under 2 pairs).
        p_value: float. The test's two-sided p-value (NaN when no test could be run).
        p_holm: float. `p_value` after Holm's correction over all comparisons made together.
        test: str. `"paired t-test"`, `"Wilcoxon signed-rank test"`, the sign test
            when all differences are identical, or `"none"`.
        distinguishable: bool. `p_holm < alpha`.
        seeds_needed: int or None. Seeds a paired t-test would need to separate the
            pair with 80% power at the strictest Holm level, from the observed
            mean and spread of the differences; None when no difference was observed
            or fewer than 2 pairs exist.
        alpha: float. Significance level. Defaults to `0.05`.

    Example:

    >>> c = PairedComparison("test_accuracy", "mlp", "ic", "none", 5, 0.02, 0.01, 0.03,
    ...                      0.004, 0.016, "paired t-test", True, 4)
    >>> c.distinguishable
    True
    """

    metric: str
    group: str
    best: str
    other: str
    n_pairs: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    test: str
    distinguishable: bool
    seeds_needed: object
    alpha: float = ALPHA


def default_label(row):
    """`"placement / dropout rate / norm"` of a row: how a configuration is named within its architecture.

    Example:

    >>> default_label({"placement": "ic", "dropout": "standard", "dropout_rate": 0.2, "norm": "batch"})
    'ic / standard 0.2'
    """
    text = str(row["placement"])
    if row.get("dropout_rate"):
        text += f" / {row['dropout']} {row['dropout_rate']:g}"
    if row.get("norm") not in ("batch", None):
        text += f" / norm={row['norm']}"
    return text


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


def compare_pair(best, other, *, metric="test_accuracy", group="", test="t", alpha=ALPHA, n_comparisons=1):
    """Compare two configurations' per-seed values, paired by seed; not yet Holm-corrected.

    Args:
        best: `(label, {seed: value})` of the reference configuration.
        other: `(label, {seed: value})` of the compared one.
        metric: str. Name of the metric. Defaults to `"test_accuracy"`.
        group: str. Group name recorded in the result. Defaults to `""`.
        test: str. `"t"` (paired t-test) or `"wilcoxon"`. Defaults to `"t"`.
        alpha: float. Significance level. Defaults to `0.05`.
        n_comparisons: int. Size of the family, for the seeds-needed estimate
            (at the strictest Holm level `alpha / n_comparisons`). Defaults to `1`.

    Returns:
        `PairedComparison` with `p_holm == p_value` (pass a list to `holm` to correct).

    Example:

    >>> c = compare_pair(("a", {0: 0.9, 1: 0.8, 2: 0.85}), ("b", {0: 0.7, 1: 0.61, 2: 0.64}))
    >>> round(c.mean_difference, 2), c.test
    (0.2, 'paired t-test')
    """
    _checks.one_of(test, tuple(TESTS), "test")
    seeds = sorted(set(best[1]) & set(other[1]), key=str)
    d = np.array([best[1][s] - other[1][s] for s in seeds])
    n = len(d)
    mean = float(np.mean(d)) if n else float("nan")
    if n < 2:
        return PairedComparison(metric, group, best[0], other[0], n, mean, float("nan"), float("nan"),
                                float("nan"), float("nan"), "none", False, None, alpha)
    spread = float(np.std(d, ddof=1))
    if spread <= 1e-12:  # float noise of equal differences, e.g. 0.96 - 0.953 vs 0.962 - 0.955
        # Identical differences on every seed (accuracies on a fixed test set are discrete): a t-test is
        # undefined, so the sign test says how much n equal signs prove (p = 2 / 2**n).
        if mean == 0:
            return PairedComparison(metric, group, best[0], other[0], n, mean, mean, mean, 1.0, 1.0, SIGN_TEST,
                                    False, None, alpha)
        p = float(stats.binomtest(n, n).pvalue)
        needed = next(k for k in range(2, MAX_SEEDS) if stats.binomtest(k, k).pvalue < alpha / n_comparisons)
        return PairedComparison(metric, group, best[0], other[0], n, mean, mean, mean, p, p, SIGN_TEST,
                                p < alpha, max(needed, n), alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-equal values: precision notes only
        result = stats.ttest_rel([best[1][s] for s in seeds], [other[1][s] for s in seeds])
        low, high = result.confidence_interval(1 - ALPHA)
        p = float(result.pvalue) if test == "t" else float(stats.wilcoxon(d).pvalue)
    return PairedComparison(metric, group, best[0], other[0], n, mean, float(low), float(high), p, p,
                            TESTS[test], p < alpha, seeds_needed(d, alpha=alpha / n_comparisons), alpha)


def seeds_needed(differences, *, alpha=ALPHA, power=POWER):
    """Seeds a two-sided paired t-test needs to detect the observed mean difference.

    Uses Cohen's d of the differences (mean / standard deviation) and
    `statsmodels.stats.power.TTestPower`. None when the mean is zero or more
    than 10,000 seeds would be needed.

    Example:

    >>> seeds_needed([0.01, 0.03, -0.01, 0.02, 0.0])
    22
    """
    d = np.asarray(differences, dtype=float)
    mean, spread = float(np.mean(d)), float(np.std(d, ddof=1))
    if mean == 0:
        return None
    if spread <= 1e-12:
        return 2
    effect = abs(mean) / spread
    # Power over ranges of sample sizes instead of solve_power: its root finder fails on large effects.
    # Small sizes first: most answers are below 100, and power over all 10,000 sizes costs ~0.1 s a call.
    for low, high in ((2, 128), (128, MAX_SEEDS + 1)):
        sizes = np.arange(low, high)
        reached = np.nonzero(TTestPower().power(effect, sizes, alpha, alternative="two-sided") >= power)[0]
        if len(reached):
            return int(sizes[reached[0]])
    return None


def holm(comparisons, *, alpha=ALPHA):
    """Holm-correct a family of comparisons; returns new `PairedComparison`s in the same order.

    Comparisons without a p-value (under 2 pairs) stay undistinguishable and do
    not count towards the family.

    Example:

    >>> a = compare_pair(("a", {0: 0.9, 1: 0.8, 2: 0.85}), ("b", {0: 0.7, 1: 0.61, 2: 0.64}))
    >>> [c.p_holm >= c.p_value for c in holm([a, a])]
    [True, True]
    """
    tested = [i for i, c in enumerate(comparisons) if math.isfinite(c.p_value)]
    out = list(comparisons)
    if tested:
        # statsmodels' Holm branch ends with gc.collect(), 0.3 s in a process holding TensorFlow and JAX: frozen,
        # the objects that existed before are left out of that collection.
        gc.freeze()
        try:
            reject, adjusted, _, _ = multipletests([comparisons[i].p_value for i in tested], alpha=alpha,
                                                   method="holm")
        finally:
            gc.unfreeze()
        for i, rej, p in zip(tested, reject, adjusted):
            out[i] = dataclasses.replace(comparisons[i], p_holm=float(p), distinguishable=bool(rej), alpha=alpha)
    return out


def paired_comparisons(
    rows: Iterable[Mapping[str, Any]],
    metric: str | Sequence[str] = "test_accuracy",
    *,
    group_by: str = "architecture",
    label: Callable[[Mapping[str, Any]], str] = default_label,
    higher_is_better: bool | None = None,
    test: str = "t",
    alpha: float = ALPHA,
) -> list[PairedComparison]:
    """Within each group, compare the best configuration with every other one, paired by seed, Holm-corrected.

    Args:
        rows: iterable of dicts, one per run (e.g. `compare_exports(...).rows`), with the
            keys `architecture, placement, dropout, dropout_rate, norm, seed` and the metric(s).
        metric: str or sequence of str. Metric(s) to compare; Holm's correction covers
            every comparison of every metric in the call. Defaults to `"test_accuracy"`.
        group_by: str. Row key whose values form the groups. Defaults to `"architecture"`.
        label: callable row -> str naming a configuration. Defaults to `default_label`.
        higher_is_better: bool or None. None looks the metric up in `DIRECTIONS`.
        test: str. `"t"` (paired t-test) or `"wilcoxon"` (from 6 seeds up). Defaults to `"t"`.
        alpha: float. Family-wise significance level. Defaults to `0.05`.

    Returns:
        list of `PairedComparison`, by metric, group, then `p_value`.

    Example:

    >>> rows = [{"architecture": "mlp", "placement": p, "dropout": "standard", "dropout_rate": 0.2,
    ...          "norm": "batch", "seed": s, "test_accuracy": a + 0.01 * s}
    ...         for p, a in (("ic", 0.66), ("dropout", 0.60)) for s in range(3)]
    >>> [(c.best, c.other, c.n_pairs) for c in paired_comparisons(rows)]
    [('ic / standard 0.2', 'dropout / standard 0.2', 3)]
    """
    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    alpha = _checks.fraction(alpha, "alpha")
    rows = list(rows)
    plans = []
    for name in metrics:
        higher = DIRECTIONS.get(name) if higher_is_better is None else higher_is_better
        if higher is None:
            raise ValueError(f"Unknown direction for metric {name!r}: pass `higher_is_better`. "
                             f"Known metrics: {', '.join(sorted(DIRECTIONS))}.")
        groups = _by_seed(rows, name, lambda r: (r.get(group_by), *(r.get(k) for k in CONFIG_KEYS)))
        labels = {(r.get(group_by), *(r.get(k) for k in CONFIG_KEYS)): label(r) for r in rows}
        for group in sorted(groups, key=str):
            configs = {k: v for k, v in groups[group].items() if v}
            if len(configs) < 2:
                continue
            sign = 1 if higher else -1
            best = max(configs, key=lambda k: (sign * np.mean(list(configs[k].values())), labels[k]))
            for key in sorted(configs, key=lambda k: labels[k]):
                if key != best:
                    plans.append((name, group, (labels[best], configs[best]), (labels[key], configs[key])))
    made = [compare_pair(b, o, metric=name, group=str(group), test=test, alpha=alpha, n_comparisons=len(plans))
            for name, group, b, o in plans]
    corrected = holm(made, alpha=alpha)
    order = {name: i for i, name in enumerate(metrics)}
    return sorted(corrected, key=lambda c: (order[c.metric], c.group,
                                            c.p_value if math.isfinite(c.p_value) else 2.0, c.other))


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


def _interval(c):
    """`"95% CI -0.2 to +1.0"`: the bounds in the difference's unit, named once by the difference."""
    low, high = (format_difference(c.metric, v).removesuffix(" points") for v in (c.ci_low, c.ci_high))
    return f"95% CI {low} to {high}"


def describe_comparison(c):
    """One sentence that claims only what the test supports.

    Example:

    >>> c = PairedComparison("test_accuracy", "mlp", "ic", "none", 5, 0.004, -0.002, 0.01,
    ...                      0.2, 0.6, "paired t-test", False, 31)
    >>> describe_comparison(c)
    'ic vs none: +0.4 points, 95% CI -0.2 to +1.0, not distinguishable with 5 seeds (paired t-test, Holm p = 0.6); about 31 seeds would be needed.'
    """
    head = f"{c.best} vs {c.other}: {format_difference(c.metric, c.mean_difference)}"
    if c.n_pairs < 2:
        return f"{head}; not testable with {plural(c.n_pairs, 'shared seed')}."
    head += f", {_interval(c)}"
    where = f"({c.test}, Holm p = {c.p_holm:.2g})"
    if c.distinguishable:
        return f"{head}, distinguishable with {c.n_pairs} seeds {where}."
    text = f"{head}, not distinguishable with {c.n_pairs} seeds {where}"
    if c.seeds_needed is None:
        return text + "; no difference was observed."
    return text + f"; about {c.seeds_needed} seeds would be needed."


def comparison_findings(comparisons: Sequence[PairedComparison]) -> list[str]:
    """Finding sentences, one per metric and group: what is separated from the best, and what is not.

    Example:

    >>> rows = [{"architecture": "mlp", "placement": p, "dropout": "standard", "dropout_rate": 0.2,
    ...          "norm": "batch", "seed": s, "test_accuracy": a + 0.01 * s + 0.003 * (p == "ic") * s}
    ...         for p, a in (("ic", 0.66), ("dropout", 0.60)) for s in range(3)]
    >>> comparison_findings(paired_comparisons(rows))[0].startswith("mlp, test accuracy: best ic")
    True
    """
    lines = []
    seen = {}
    for c in comparisons:
        seen.setdefault((c.metric, c.group), []).append(c)
    for (metric, group), items in seen.items():
        name = metric.replace("_", " ")
        separated = [c for c in items if c.distinguishable]
        unclear = [c for c in items if not c.distinguishable and c.n_pairs >= 2]
        untestable = [c for c in items if c.n_pairs < 2]
        seeds = max(c.n_pairs for c in items)
        text = f"{group}, {name}: best {items[0].best}"
        if separated:
            text += "; separated from it (paired, Holm-corrected): " + ", ".join(
                f"{c.other} ({format_difference(metric, c.mean_difference)}, {_interval(c)})" for c in separated)
        if unclear:
            text += f"; not distinguishable from it with {seeds} seeds: " + ", ".join(
                f"{c.other} ({format_difference(metric, c.mean_difference)}, "
                + (f"about {c.seeds_needed} seeds needed)" if c.seeds_needed else "no difference observed)")
                for c in unclear)
        if untestable:
            text += "; not testable (fewer than 2 shared seeds): " + ", ".join(c.other for c in untestable)
        lines.append(text + ".")
    return lines
