"""The study report: per-configuration means and 95% confidence intervals over seeds, ranked,
with plots and findings generated from the measured numbers.

A configuration is a run without its seed (architecture, placement,
dropout kind and rate, norm). For each, `report.md` and `report.html` show
mean and 95% confidence interval (Student's t over seeds) of test
accuracy, clean gap, reported gap, BatchNorm variance-shift ratio (Li et
al., CVPR 2019) and training time, ranked by mean test accuracy. Findings
compare configurations paired by seed with Holm's correction
(`kerasreg.analysis.statistics`), so that differences within seed noise are
called so.
"""

import base64
import dataclasses
import html
import json
import math
import pathlib

import numpy as np
from scipy import stats

from kerasreg.analysis import compare, plots, statistics
from kerasreg.export import MANIFEST
from kerasreg.models import placements

CONFIG_KEYS = ("architecture", "placement", "dropout", "dropout_rate", "norm")
METRICS = {
    # key: (label, format, higher is better)
    "test_accuracy": ("test accuracy", "{:.2%}", True),
    "clean_gap": ("clean gap", "{:+.2%}", False),
    "reported_gap": ("reported gap", "{:+.2%}", False),
    "variance_shift_max": ("variance shift", "{:.3f}", False),
    "test_accuracy_reestimated": ("test accuracy, BN re-estimated", "{:.2%}", True),
    "variance_shift_reestimated": ("variance shift, BN re-estimated", "{:.3f}", False),
    "best_epoch": ("chosen epoch", "{:.0f}", False),
    "train_time": ("train time (s)", "{:.1f}", False),
}
ALPHA = 0.05


@dataclasses.dataclass
class ConfigSummary:
    """Seeds of one configuration, aggregated."""

    label: str
    config: dict
    values: dict  # metric -> list of per-seed values (None where not measured)

    def stat(self, metric):
        """`(mean, half-width of the 95% CI, n)`; the half-width is NaN with one seed."""
        values = [v for v in self.values[metric] if v is not None and math.isfinite(v)]
        if not values:
            return float("nan"), float("nan"), 0
        n = len(values)
        mean = float(np.mean(values))
        if n < 2:
            return mean, float("nan"), n
        half = stats.t.ppf(1 - ALPHA / 2, n - 1) * float(np.std(values, ddof=1)) / math.sqrt(n)
        return mean, float(half), n


def _label(row):
    placement, dropout, rate, norm = row["placement"], row["dropout"], row["dropout_rate"], row["norm"]
    text = f"{row['architecture']} / {placement}"
    if rate:
        text += f" / {dropout} {rate:g}"
    if norm not in ("batch", None) and _has_norm_layer_slot(placement):
        text += f" / norm={norm}"
    return text


def _has_norm_layer_slot(placement):
    try:
        return placements.get_placement(placement).uses_norm
    except ValueError:  # registered in another process: show the norm to be safe
        return True


def summarize(rows):
    """Group compare rows by configuration; returns summaries ranked by mean test accuracy.

    Example:

    >>> rows = [{"architecture": "mlp", "placement": "none", "dropout": "none", "dropout_rate": 0,
    ...          "norm": "batch", "test_accuracy": a, "clean_gap": 0.1, "reported_gap": 0.1,
    ...          "variance_shift_max": None, "train_time": 1.0} for a in (0.8, 0.9)]
    >>> round(summarize(rows)[0].stat("test_accuracy")[0], 2)
    0.85
    """
    groups = {}
    for row in rows:
        key = tuple(row[k] for k in CONFIG_KEYS)
        summary = groups.setdefault(key, ConfigSummary(_label(row), dict(zip(CONFIG_KEYS, key)),
                                                       {m: [] for m in METRICS}))
        for metric in METRICS:
            summary.values[metric].append(row.get(metric))
    return sorted(groups.values(), key=lambda s: -np.nan_to_num(s.stat("test_accuracy")[0], nan=-1))


def _cell(summary, metric):
    mean, half, n = summary.stat(metric)
    if n == 0:
        return "n/a"
    fmt = METRICS[metric][1]
    text = fmt.format(mean)
    if math.isfinite(half):
        text += " ± " + fmt.format(half).lstrip("+")
    return text


def _per_seed(rows, architecture, placement, metric):
    """{seed: value} of one placement; None when several configurations (e.g. rates) share it."""
    picked = [r for r in rows if r.get("architecture") == architecture and r.get("placement") == placement
              and isinstance(r.get(metric), (int, float))]
    values = {r.get("seed"): r[metric] for r in picked}
    return values if len(values) == len(picked) else None


def format_gain(c):
    """`"+5.8 points (95% CI ..., distinguishable)"` for a re-estimated vs trained comparison."""
    verdict = "distinguishable" if c.distinguishable else f"not distinguishable with {c.n_pairs} seeds"
    interval = (f"95% CI {statistics.format_difference(c.metric, c.ci_low)} to "
                f"{statistics.format_difference(c.metric, c.ci_high)}, " if c.n_pairs > 1 else "")
    return f"{statistics.format_difference(c.metric, c.mean_difference)} ({interval}{verdict})"


def _remedy_comparisons(measured, rows, n_comparisons):
    """Per configuration: test accuracy after BN re-estimation vs as trained, paired by seed."""
    out = []
    for summary in measured:
        picked = [r for r in rows if all(r.get(k) == summary.config[k] for k in CONFIG_KEYS)
                  and isinstance(r.get("test_accuracy_reestimated"), (int, float))
                  and isinstance(r.get("test_accuracy"), (int, float))]
        if picked:
            after = {r.get("seed"): r["test_accuracy_reestimated"] for r in picked}
            before = {r.get("seed"): r["test_accuracy"] for r in picked}
            out.append(statistics.compare_pair(("re-estimated", after), ("trained", before),
                                               group=summary.label, n_comparisons=n_comparisons + len(measured)))
    return out


def findings(summaries, rows=()):
    """Sentences about the measured numbers, with paired, Holm-corrected tests (`statistics`).

    Within each architecture the best configuration is compared with every
    other one, paired by seed, for test accuracy and clean gap; with the
    bn_act_drop vs bn_before_act question, these form one Holm family.

    Example:

    >>> findings([])
    ['No completed runs to report.']
    """
    measured = [s for s in summaries if s.stat("test_accuracy")[2]]
    if not measured:
        return ["No completed runs to report."]
    rows = list(rows)
    family = statistics.paired_comparisons(rows, ("test_accuracy", "clean_gap"))
    questions = []
    for arch in sorted({s.config["architecture"] for s in measured}):
        plain = _per_seed(rows, arch, "bn_before_act", "test_accuracy")
        with_drop = _per_seed(rows, arch, "bn_act_drop", "test_accuracy")
        if plain and with_drop:
            questions.append(statistics.compare_pair(("bn_act_drop", with_drop), ("bn_before_act", plain),
                                                     group=arch, n_comparisons=len(family) + 1))
    remedies = _remedy_comparisons(measured, rows, n_comparisons=len(family) + len(questions))
    corrected = statistics.holm(family + questions + remedies)
    family, questions = corrected[:len(family)], corrected[len(family):len(family) + len(questions)]
    remedies = corrected[len(family) + len(questions):]
    lines = []
    for arch in sorted({s.config["architecture"] for s in measured}):
        best = max((s for s in measured if s.config["architecture"] == arch),
                   key=lambda s: s.stat("test_accuracy")[0])
        lines.append(f"Best test accuracy ({arch}): **{best.label}** ({_cell(best, 'test_accuracy')}).")
    if all(c.n_pairs < 2 for c in family):
        lines.append("With one seed per configuration, no difference can be told apart from noise.")
    else:
        lines += statistics.comparison_findings(family)
    for c in questions:
        lines.append(f"Does BatchNorm reduce the need for dropout ({c.group})? Adding dropout after BatchNorm: "
                     + statistics.describe_comparison(c))
    gains = [c for c in remedies if c.n_pairs]
    if gains:
        lines.append("Re-estimating BatchNorm statistics after training (train split, dropout off) changes test "
                     "accuracy by: " + "; ".join(
                         f"{c.group} {format_gain(c)}" for c in sorted(gains, key=lambda c: -c.mean_difference))
                     + ".")
    shifted = sorted((s for s in measured if s.stat("variance_shift_max")[2]),
                     key=lambda s: -s.stat("variance_shift_max")[0])
    if shifted:
        top = ", ".join(f"{s.label} ({_cell(s, 'variance_shift_max')})" for s in shifted[:3])
        line = f"Largest BatchNorm variance shift (max(r, 1/r), 1 = none): {top}"
        if len(shifted) > 3:
            low = shifted[-1]
            line += f"; smallest: {low.label} ({_cell(low, 'variance_shift_max')})"
        lines.append(line + ".")
    understated = [s for s in measured if s.stat("reported_gap")[0] < s.stat("clean_gap")[0] - 0.005]
    if understated:
        lines.append(
            f"The reported gap understates the clean gap for {len(understated)} of {len(measured)} "
            f"configurations ({', '.join(s.label for s in understated)}): Keras's training accuracy is a "
            "running mean over the epoch in training mode (dropout on, batch statistics, weights still "
            "changing), not the accuracy of the final model."
        )
    return lines


def _table_rows(summaries):
    return [[str(i), s.label, *(_cell(s, m) for m in METRICS), str(s.stat("test_accuracy")[2])]
            for i, s in enumerate(summaries, start=1)]


def _headers():
    return ["rank", "configuration", *(METRICS[m][0] for m in METRICS), "seeds"]


@dataclasses.dataclass
class StudyReport:
    """What a study produced: ranked summaries, findings, failures and the files written."""

    summaries: list
    findings: list
    failures: dict
    files: list

    def markdown(self):
        """The report as Markdown (what `report.md` holds)."""
        return (pathlib.Path(self.files[0])).read_text()


def _markdown(title, config_text, summaries, lines, failures, plots, comparison_md):
    parts = [f"# {title}", "", config_text, "", "## Ranking", "",
             "Mean and 95% confidence interval over seeds, ranked by mean test accuracy. "
             "Clean gap = train accuracy re-measured in inference mode minus validation accuracy; "
             "reported gap = Keras's running training accuracy minus validation accuracy; "
             "variance shift = max(r, 1/r) of the BatchNorm input variance at inference over its moving "
             "variance (1 = none).", ""]
    headers = _headers()
    parts.append("| " + " | ".join(headers) + " |")
    parts.append("|" + "|".join(["---:", "---"] + ["---:"] * (len(headers) - 2)) + "|")
    parts += ["| " + " | ".join(row) + " |" for row in _table_rows(summaries)]
    parts += ["", "## Findings", ""] + [f"- {line}" for line in lines]
    if failures:
        parts += ["", "## Failed runs", ""] + [f"- `{name}`: {error}" for name, error in sorted(failures.items())]
    parts += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    parts += ["", "## Per-run comparison", "", comparison_md.split("\n", 2)[-1].strip(), ""]
    return "\n".join(parts)


def _html(title, config_text, summaries, lines, failures, plots):
    def inline(path):
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'

    head = "".join(f"<th>{html.escape(h)}</th>" for h in _headers())
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in _table_rows(summaries))
    items = "".join(f"<li>{html.escape(line).replace('**', '')}</li>" for line in lines)
    failed = "".join(f"<li><code>{html.escape(n)}</code>: {html.escape(e)}</li>" for n, e in sorted(failures.items()))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:nth-child(2){text-align:left}img{max-width:100%}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(config_text)}</p>"
        f"<h2>Ranking</h2><table><tr>{head}</tr>{body}</table>"
        f"<h2>Findings</h2><ul>{items}</ul>"
        + (f"<h2>Failed runs</h2><ul>{failed}</ul>" if failures else "")
        + "<h2>Plots</h2>" + "".join(inline(p) for p in plots)
        + "</body></html>"
    )


def _config_text(config):
    return config.describe()


def write_report(out, config, *, failures=None, latency_repeats=3):
    """Compare the study's exports and write `report.md`, `report.html`, plots and compare files.

    Args:
        out: str or path. The study folder (exports in `out/runs/`).
        config: `StudyConfig` the study ran.
        failures: dict run name -> error text. Defaults to none.
        latency_repeats: int. Timed SavedModel calls per export in compare. Defaults to `3`.

    Returns:
        `StudyReport`.

    Example:

    >>> report = write_report("studies/quick", kerasreg.StudyConfig.preset("quick"))  # doctest: +SKIP
    """
    out = pathlib.Path(out)
    failures = dict(failures or {})
    names = {c.run_name() for c in config.runs()}
    paths = [out / "runs" / name for name in sorted(names) if (out / "runs" / name / MANIFEST).exists()]
    rows, comparison_md = [], "# none\n\nNo run completed."
    if paths:
        comparison = compare.compare_exports(paths, sort="test_accuracy", data_dir=config.data_dir,
                                             latency_repeats=latency_repeats)
        comparison.write(out)
        comparison_md = (out / "compare.md").read_text()
        for row in comparison.rows:
            manifest = json.loads((pathlib.Path(row["path"]) / MANIFEST).read_text())
            rows.append({**row, "train_time": (manifest.get("metrics") or {}).get("epoch_time_total")})
    summaries = summarize(rows)
    lines = findings(summaries, rows)
    figures = plots.summary_bars(summaries, out, {k: v[0] for k, v in METRICS.items()}) if summaries else []
    title = f"kerasreg study: {config.dataset}"
    config_text = _config_text(config)
    (out / "report.md").write_text(_markdown(title, config_text, summaries, lines, failures, figures, comparison_md))
    (out / "report.html").write_text(_html(title, config_text, summaries, lines, failures, figures))
    return StudyReport(summaries, lines, failures, [out / "report.md", out / "report.html", *figures])
