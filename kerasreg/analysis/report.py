"""The study report: per-configuration means and 95% confidence intervals over seeds, ranked,
with plots and findings generated from the measured numbers.

A configuration is a run without its seed (architecture, placement,
dropout kind and rate, norm). For each, `report.md` and `report.html` show
mean and 95% confidence interval (Student's t over seeds) of test
accuracy, clean gap, reported gap, BatchNorm variance-shift ratio (Li et
al., CVPR 2019) and training time, ranked by mean test accuracy. Findings
compare each arm's fixed contrasts paired by seed, at the Bonferroni level
(`kerasreg.analysis.statistics`), so that differences within seed noise are
called so.
"""

import dataclasses
import datetime
import itertools
import json
import math
import pathlib

import numpy as np
from scipy import stats

from kerasreg._files import write_atomic
from kerasreg._text import plural
from kerasreg.analysis import answer, compare, contrasts, hparams, plots, statistics
from kerasreg.analysis import report_render as render
from kerasreg.analysis.plots import CONFIG_KEYS
from kerasreg.export import MANIFEST

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
ANSWER = "answer.json"


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
    if norm not in ("batch", None) and statistics.has_norm_layer_slot(placement):
        text += f" / norm={norm}"
    return text


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


def format_gain(c):
    """`"+5.8 points (99% CI ..., separated)"` for a re-estimated vs trained comparison."""
    verdict = "separated" if c.distinguishable else f"not separated with {plural(c.n_pairs, 'seed')}"
    interval = f"{statistics.interval_text(c)}, " if c.n_pairs > 1 else ""
    return f"{statistics.format_difference(c.metric, c.mean_difference)} ({interval}{verdict})"


def _remedy_comparisons(measured, rows):
    """Per configuration: test accuracy after BN re-estimation vs as trained, paired by seed; one family."""
    pairs = []
    for summary in measured:
        picked = [r for r in rows if all(r.get(k) == summary.config[k] for k in CONFIG_KEYS)
                  and isinstance(r.get("test_accuracy_reestimated"), (int, float))
                  and isinstance(r.get("test_accuracy"), (int, float))]
        if picked:
            pairs.append((summary.label, {r.get("seed"): r["test_accuracy"] for r in picked},
                          {r.get("seed"): r["test_accuracy_reestimated"] for r in picked}))
    return [statistics.compare_pair(("trained", before), ("re-estimated", after), group=label,
                                    intervals=len(pairs)) for label, before, after in pairs]


def _planned_rows(arm, rows):
    """The rows of the arm's configurations on its planned seeds."""
    return [r for r in rows if r.get("seed") in arm.seeds
            and statistics.default_label(r) in arm.labels.get(r.get("architecture"), ())]


def _clean_gap_comparisons(arms, rows):
    """Per arm, the same contrasts on the clean gap (planned seeds), as a family of their own."""
    out = []
    for arm in arms:
        planned = _planned_rows(arm, rows)
        measured = {r.get("architecture") for r in planned if statistics._finite(r.get("clean_gap"))}
        references = {arch: ref for arch, ref in arm.references.items() if arch in measured}
        if references:
            out += statistics.paired_comparisons([r for r in planned if r.get("architecture") in references],
                                                 "clean_gap", reference=references)
    return out


@dataclasses.dataclass
class Analysis:
    """What the report says, computed once: the decided contrasts, the headline, the findings and the answer.

    Fields:
        decided: list of `kerasreg.analysis.contrasts.Decided`, every arm's test-accuracy contrasts.
        headline: list of str. The family and its rule, the seeds each configuration got, the best.
        findings: list of str. Every finding sentence.
        answer: list of str. The short answer (`kerasreg.analysis.answer`).
    """

    decided: list
    headline: list
    findings: list
    answer: list


def analyse(summaries, rows, arms, *, dataset=""):
    """Decide every arm's fixed contrasts and word the report's headline, findings and short answer.

    Args:
        summaries: `summarize(rows)`.
        rows: compare rows of the study's runs (`architecture, placement, ..., seed`, metrics).
        arms: list of `kerasreg.analysis.contrasts.Arm` (`StudyConfig.contrast_arms()`).
        dataset: str. Named in the answer's first line. Defaults to `""`.

    Returns:
        `Analysis`.

    Example:

    >>> analyse([], [], []).answer
    ['Where should Dropout and BatchNorm go? No completed runs to answer it.']
    """
    rows = list(rows)
    measured = [s for s in summaries if s.stat("test_accuracy")[2]]
    if not measured:
        nothing = ["No completed runs to report."]
        return Analysis([], nothing, nothing, answer.answer({}, []))
    decided = [d for arm in arms for d in contrasts.decide_arm(arm, rows)]
    tested = [d.comparison for d in decided]
    headline = [contrasts.family_text(arms)] if arms else []
    headline += [contrasts.seeds_text(arm, [d for d in decided if d.arm == arm.name]) for arm in arms]
    for arch, best in _best_per_architecture(measured).items():
        headline.append(f"Best test accuracy ({arch}), a description, not a test: **{best.label}** "
                        f"({_cell(best, 'test_accuracy')}, {plural(best.stat('test_accuracy')[2], 'seed')}).")
    findings = _findings(measured, tested, _clean_gap_comparisons(arms, rows), _remedy_comparisons(measured, rows))
    short = answer.answer(plots.by_architecture(measured), tested, dataset=dataset)
    return Analysis(decided, headline, findings, short)


def _findings(measured, tested, clean, remedies):
    lines = []
    if tested and all(c.n_pairs < 2 for c in tested):
        lines.append("With one seed per configuration, no difference can be told apart from noise.")
    else:
        lines += statistics.comparison_findings(tested)
    for c in tested:
        if c.reference == "bn_before_act" and c.other.startswith("bn_act_drop"):
            lines.append(f"Does BatchNorm reduce the need for dropout ({c.group})? Adding dropout after BatchNorm: "
                         + statistics.describe_comparison(c))
    if clean:
        lines += statistics.comparison_findings(clean)
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


def _ranking_table(summaries):
    # A metric no run measured (e.g. re-estimation in an older study) would be a column of n/a.
    shown = [m for m in METRICS if any(s.stat(m)[2] for s in summaries)]
    headers = ["rank", "configuration", *(METRICS[m][0] for m in shown), "seeds"]
    cells = [[str(i), s.label, *(_cell(s, m) for m in shown), str(s.stat("test_accuracy")[2])]
             for i, s in enumerate(summaries, start=1)]
    return headers, cells, ["r", "l"] + ["r"] * (len(headers) - 2)


def _run_table(rows):
    """The per-run table in compare's columns and formats (columns no run has, such as latency, left out)."""
    columns = [c for c in compare.COLUMNS if any(row.get(c) is not None for row in rows)] or list(compare.COLUMNS)
    return ([compare.COLUMNS[c][0] for c in columns],
            [[compare._format(c, row.get(c)) for c in columns] for row in rows],
            ["l" if compare.COLUMNS[c][1] == 0 else "r" for c in columns])


def _best_per_architecture(summaries):
    """architecture -> its configuration with the highest mean test accuracy, architectures in first-seen order."""
    return {arch: max(members, key=lambda s: s.stat("test_accuracy")[0])
            for arch, members in plots.by_architecture(summaries).items()}


@dataclasses.dataclass
class StudyReport:
    """What a study produced: the short answer, headline, ranked summaries, findings, failures, files and decisions."""

    summaries: list
    findings: list
    failures: dict
    files: list
    headline: list = dataclasses.field(default_factory=list)
    answer: list = dataclasses.field(default_factory=list)
    decided: list = dataclasses.field(default_factory=list)

    def markdown(self):
        """The report as Markdown (what `report.md` holds)."""
        return (pathlib.Path(self.files[0])).read_text()


def _config_text(config):
    return config.describe()


def busy_line(execution):
    """How busy the workers were, from the first run's start to the last export, and how many runs were added.

    The floor is the runs' summed worker time divided by the workers: the
    wall time no schedule can beat. Busy is that floor over the wall time.

    Example:

    >>> busy_line({"work_seconds": 685.0, "workers": 2, "wall_seconds": 352.0, "added": 10})
    'Training: 685 s of work on 2 workers, floor 342 s, wall 352 s, 97% busy; 10 runs added for undecided contrasts.'
    """
    work, workers, wall = execution["work_seconds"], execution["workers"], execution["wall_seconds"]
    floor = work / workers
    busy = floor / wall if wall > 0 else 0.0
    added = f"; {plural(execution['added'], 'run')} added for undecided contrasts" if execution.get("added") else ""
    return (f"Training: {work:.0f} s of work on {plural(workers, 'worker')}, floor {floor:.0f} s, "
            f"wall {wall:.0f} s, {busy:.0%} busy{added}.")


def study_time(manifests, workers=None):
    """What `busy_line` reports, read from a finished study's manifests.

    The work is the runs' summed worker time (`training.seconds`), the wall
    time runs from the first run's start (`training.started`) to the last
    export (`created`). Manifests written before kerasreg 0.3 record
    neither: such a run is taken to have trained for its epochs
    (`metrics.epoch_time_total`) and ended at its export, which leaves out
    its compilation, evaluation and export, so its work is a lower bound and
    the result says `estimated`.

    Args:
        manifests: iterable of manifest dicts (`manifest.json` of each run).
        workers: int or None. How many workers trained the runs. Defaults to
            `None`: the most runs that were training at the same moment
            (which needs every run's recorded start and worker time).

    Returns:
        dict with `work_seconds`, `workers`, `wall_seconds` (what `busy_line`
        takes), `runs` and `estimated` (how many runs lacked the recorded times).

    Example:

    >>> run = {"created": "2026-11-28T03:00:10+00:00",
    ...        "training": {"started": "2026-11-28T03:00:00.000+00:00", "seconds": 9.5}}
    >>> study_time([run])
    {'work_seconds': 9.5, 'workers': 1, 'wall_seconds': 10.0, 'runs': 1, 'estimated': 0}
    """
    spans, exports, estimated = [], [], 0
    for manifest in manifests:
        training = manifest.get("training") or {}
        export = datetime.datetime.fromisoformat(manifest["created"]).timestamp()
        if training.get("started") is not None and training.get("seconds") is not None:
            start = datetime.datetime.fromisoformat(training["started"]).timestamp()
            seconds = float(training["seconds"])
        else:
            estimated += 1
            seconds = float((manifest.get("metrics") or {}).get("epoch_time_total") or 0.0)
            start = export - seconds
        spans.append((start, start + seconds))
        exports.append(export)
    if not spans:
        raise ValueError("No manifests to read the study's time from.")
    if workers is None:
        if estimated:
            raise ValueError(f"{estimated} of {len(spans)} manifests record no start and worker time (written "
                             "before kerasreg 0.3), so the number of workers cannot be read from them; pass `workers`.")
        # The most spans open at once: +1 at each start, -1 at each end, ends first on a tie.
        events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        workers = max(itertools.accumulate(step for _, step in events))
    return {"work_seconds": sum(end - start for start, end in spans), "workers": workers,
            "wall_seconds": max(exports) - min(start for start, _ in spans), "runs": len(spans),
            "estimated": estimated}


def _execution_text(execution):
    """Where the runs of this invocation trained: runs per node and retries after a node died."""
    if not execution:
        return ""
    nodes = ", ".join(f"{node}: {count}" for node, count in execution["runs_per_node"].items()) or "none"
    return (f" Trained on {execution['executor']}; runs per node in this invocation: {nodes}; "
            f"{plural(execution['retried'], 'run')} retried after their node died."
            + (f" {busy_line(execution)}" if execution.get("workers") else ""))


def write_report(out, config, *, failures=None, execution=None):
    """Compare the study's exports and write `report.md`, `report.html`, plots and compare files.

    Args:
        out: str or path. The study folder (exports in `out/runs/`).
        config: `StudyConfig` the study ran.
        failures: dict run name -> error text. Defaults to none.
        execution: dict or None. `executor` description, `runs_per_node` and
            `retried` of the invocation that trained the runs. Defaults to `None`.

    Returns:
        `StudyReport`.

    Example:

    >>> report = write_report("studies/quick", kerasreg.StudyConfig.preset("quick"))  # doctest: +SKIP
    """
    out = pathlib.Path(out)
    failures = dict(failures or {})
    planned = read_rows(out, config.runs(), config.data_dir)[0]
    rows, histories = read_rows(out, config.runs() + config.added_runs(planned), config.data_dir, write=True)
    summaries = summarize(rows)
    arms = config.contrast_arms()
    analysis = analyse(summaries, rows, arms, dataset=config.dataset)
    groups = plots.run_groups(rows, [histories.get(row["path"]) or {} for row in rows])
    figures = plots.study_figures(summaries, groups, out) if summaries else []
    title = f"kerasreg study: {config.dataset}"
    # The family and its rule first: what was compared is said before any result.
    answer_section = analysis.headline[:1] + analysis.answer + analysis.headline[1:]
    page = render.Page(title, _config_text(config) + _execution_text(execution), answer_section,
                       _ranking_table(summaries), analysis.findings, failures, figures, _run_table(rows))
    write_atomic(out / ANSWER, json.dumps(answer_summary(config.dataset, arms, analysis.decided), indent=2) + "\n")
    write_atomic(out / "report.md", render.markdown(page))
    write_atomic(out / "report.html", render.html_page(page))
    return StudyReport(summaries, analysis.findings, failures,
                       [out / "report.md", out / "report.html", *figures, out / ANSWER], analysis.headline,
                       analysis.answer, analysis.decided)


def read_rows(out, runs, data_dir, *, write=False):
    """`(rows, histories)` of the exported runs among `runs` (`RunConfig`s) in study folder `out`, from their manifests.

    With `write=True` the compare files and hparams sessions of those runs are written into `out` too.

    Example:

    >>> rows, histories = read_rows("studies/quick", kerasreg.StudyConfig.preset("quick").runs(), None)  # doctest: +SKIP
    """
    names = {c.run_name() for c in runs}
    paths = [out / "runs" / name for name in sorted(names) if (out / "runs" / name / MANIFEST).exists()]
    if not paths:
        return [], {}
    # Test metrics are the workers' one evaluation of each trained model (its SavedModel was
    # checked against it when exported): reloading every SavedModel here would repeat that work.
    comparison = compare.compare_exports(paths, sort="test_accuracy", data_dir=data_dir, evaluate=False)
    rows = []
    for row in comparison.rows:
        manifest = json.loads((pathlib.Path(row["path"]) / MANIFEST).read_text())
        rows.append({**row, "train_time": (manifest.get("metrics") or {}).get("epoch_time_total")})
    if write:
        # The report draws its own per-configuration figures; compare's per-run ones would repeat them.
        comparison.write(out, plots=False)
        hparams.write_hparams(out, rows)
    return rows, comparison.histories


def answer_summary(dataset, arms, decided):
    """The answer as data: every arm's contrasts, decisions, differences and intervals (what `answer.json` holds).

    Differences and intervals are in accuracy points (other - reference).

    Example:

    >>> answer_summary("mnist1d", [], [])["arms"]
    []
    """
    def points(value):
        return round(100 * value, 4) if math.isfinite(value) else None

    return {
        "dataset": dataset,
        "method": statistics.METHOD,
        "arms": [{
            "name": arm.name, "references": arm.references, "seeds": list(arm.seeds), "max_seeds": arm.max_seeds,
            "equivalence_margin_points": points(arm.margin), "alpha": arm.alpha,
            "contrasts": [{
                "architecture": d.comparison.group, "reference": d.comparison.reference,
                "other": d.comparison.other, "decision": d.comparison.decision,
                "difference_points": points(d.comparison.mean_difference),
                "interval_points": [points(d.comparison.ci_low), points(d.comparison.ci_high)],
                "confidence": d.comparison.confidence, "seeds": d.comparison.n_pairs, "look": d.look,
            } for d in decided if d.arm == arm.name],
        } for arm in arms],
    }
