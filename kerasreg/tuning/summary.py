"""The one-page summary of a search: the best trials, and which hyperparameters mattered.

"Mattered" is measured plainly: for every hyperparameter that took more
than one value, the mean objective of the completed trials per value (and
how many trials each mean is over). With few trials per value these means
are noisy; the counts say how noisy.
"""

from __future__ import annotations

import collections
import math
import statistics


def _fmt(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def means_by_hyperparameter(rows):
    """Mean score per value of each hyperparameter that varied, over completed trials.

    Returns:
        dict: hyperparameter -> list of `(value, mean score, trials)`, best mean first
        for the direction given by the rows' order (rows come best first).

    Example:

    >>> rows = [{"score": 0.7, "hyperparameters": {"placement": "ic"}},
    ...         {"score": 0.5, "hyperparameters": {"placement": "none"}},
    ...         {"score": 0.6, "hyperparameters": {"placement": "ic"}}]
    >>> means_by_hyperparameter(rows)["placement"][0][:2]
    ('ic', 0.65)
    """
    scored = [r for r in rows if r["score"] is not None and not math.isnan(r["score"])]
    values = collections.defaultdict(lambda: collections.defaultdict(list))
    for row in scored:
        for name, value in row["hyperparameters"].items():
            values[name][value].append(row["score"])
    descending = len(scored) > 1 and scored[0]["score"] > scored[-1]["score"]
    means = {}
    for name, by_value in sorted(values.items()):
        if len(by_value) > 1:
            entries = [(value, round(statistics.fmean(s), 6), len(s)) for value, s in by_value.items()]
            means[name] = sorted(entries, key=lambda e: -e[1] if descending else e[1])
    return means


def format_summary(rows, *, config, objective, exports, wall_seconds, best=None):
    """The summary as Markdown: what was searched, the best trials, mean objective per hyperparameter value.

    Example:

    >>> print(format_summary(rows, config=config, objective=objective, exports=[], wall_seconds=12.0))  # doctest: +SKIP
    """
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    failed = [r for r in rows if r["status"] in ("FAILED", "INVALID")]
    best = best or config.best
    lines = [
        f"# Tune: {config.model} on {config.dataset}",
        "",
        f"{config.tuner} search, objective `{objective.name}` ({objective.direction}), {len(completed)} trial(s) "
        f"completed, {len(failed)} failed, {wall_seconds:.0f} s wall time; up to {config.epochs} epochs per trial, "
        f"batch {config.batch_size}, {config.optimizer} lr {config.learning_rate:g}, seed {config.seed}. Each "
        "trial keeps its best epoch by the objective.",
        "",
        "## Best trials",
        "",
        "| rank | trial | score | hyperparameters | val acc | test acc | clean gap acc | reported gap acc "
        "| variance shift | best epoch | export |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    names = {str(path.name).split("-", 1)[0]: path.name for path in exports}
    for rank, row in enumerate(completed[:best], start=1):
        hps = ", ".join(f"{k}={_fmt(v)}" for k, v in row["hyperparameters"].items())
        lines.append(
            f"| {rank} | {row['trial']} | {_fmt(row['score'])} | {hps} | {_fmt(row['val_accuracy'])} "
            f"| {_fmt(row['test_accuracy'])} | {_fmt(row['clean_gap_accuracy'])} "
            f"| {_fmt(row['reported_gap_accuracy'])} | {_fmt(row['variance_shift_max'])} "
            f"| {_fmt(row['best_epoch'])} | {names.get('trial' + row['trial'], '-')} |")
    lines += ["", f"## Mean `{objective.name}` per hyperparameter value", ""]
    means = means_by_hyperparameter(completed)
    if not means:
        lines.append("No hyperparameter took more than one value in the completed trials.")
    for name, entries in means.items():
        lines.append(f"- **{name}**: " + "; ".join(f"{_fmt(v)} {m:.4f} (n={n})" for v, m, n in entries))
    if failed:
        lines += ["", "## Failed trials", ""]
        lines += [f"- trial {r['trial']}: {r['status']}" for r in failed]
    return "\n".join(lines) + "\n"
