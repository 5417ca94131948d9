"""Li et al.'s width trend: does the variance shift of dropout shrink as the layers get wider?

Li, Chen, Hu & Yang ("Understanding the Disharmony between Dropout and Batch
Normalization by Variance Shift", CVPR 2019) find that dropout shifts the
variance a BatchNorm layer meets at inference away from the one it learned,
that the shift is worst with dropout directly before BatchNorm, and that the
large feature dimension of a Wide ResNet, whose dropout feeds a convolution
rather than a BatchNorm, makes it small. This script measures both claims on
the `digits` preset's deep arm (2-D `resnet_small`, 3 stages, rate 0.5, its
learning rate and BatchNorm momentum): one study per width (`filters` 8, 16,
32, 64), each with dropout directly before BatchNorm (`drop_before_bn`),
dropout after the activation (`bn_act_drop`, which feeds the next block's
convolution) and the Wide ResNet order (`drop_before_weight`), on seeds 0-2.
Every run trains 30 epochs without early stopping, so that every width and
placement is measured after the same training.

The variance shift is the study's: each run's largest per-layer BatchNorm
variance ratio `max(r, 1/r)` at its chosen epoch (`variance_shift_max`). The
script prints per width and placement its mean and 95% interval over seeds,
the change per doubling of width (the per-seed least-squares slope of
log2(shift) against log2(width), with its 95% interval over seeds) and, per
width, how the Wide ResNet order compares with dropout directly before
BatchNorm (paired by seed); it writes the figure `--figure`.

Each width is a study folder under `--out`, so a second call trains nothing.
On a 2-core machine shared with other jobs the four studies took about an
hour (5,763 s of training work).

Run: python benchmarks/width_trend.py [--out studies/width_trend] [--workers 2]
         [--figure docs/guide/img/width_trend.png]
"""

import argparse
import dataclasses
import io
import math
import pathlib

import numpy as np
from scipy import stats

import kerasreg
from kerasreg import _files
from kerasreg._tables import markdown_table
from kerasreg.analysis import plots

WIDTHS = (8, 16, 32, 64)
PLACEMENTS = ("drop_before_bn", "bn_act_drop", "drop_before_weight")
SEEDS = (0, 1, 2)
EPOCHS = 30
METRIC = "variance_shift_max"
CONFIDENCE = 0.95


def width_config(width, *, placements=PLACEMENTS, seeds=SEEDS, epochs=EPOCHS):
    """The `digits` preset's deep arm at `filters=width`, on `placements` and `seeds`, `epochs` each (none added).

    Example:

    >>> width_config(16).arm_configs()[0].options
    {'stages': 3, 'filters': 16}
    """
    digits = kerasreg.StudyConfig.preset("digits")
    (deep,) = digits.arms
    arm = {**deep, "name": f"filters {width}", "options": {**deep["options"], "filters": width},
           "placements": list(placements), "seeds": list(seeds), "max_seeds": None,
           "reference": placements[0], "epochs": epochs, "patience": None}
    return dataclasses.replace(digits, arms=[arm])


def run(out, widths=WIDTHS, *, workers=None, verbose=1, **grid):
    """Train (or find trained) one study per width in `out/filters<width>`; returns width -> compare rows.

    Example:

    >>> rows = run("/tmp/width", (4, 8), placements=("drop_before_bn",), seeds=(0, 1), epochs=1)  # doctest: +SKIP
    """
    rows = {}
    for width in widths:
        folder = pathlib.Path(out) / f"filters{width}"
        kerasreg.run_study(width_config(width, **grid), folder, workers=workers, verbose=verbose)
        rows[width] = kerasreg.compare_exports(folder / "runs", evaluate=False).rows
    return rows


def _placements(rows):
    """The placements in `rows`, in the order of `PLACEMENTS`, then any others by name."""
    names = {row["placement"] for width_rows in rows.values() for row in width_rows}
    return sorted(names, key=lambda name: (PLACEMENTS.index(name) if name in PLACEMENTS else len(PLACEMENTS), name))


def _by_seed(rows, placement):
    return {row["seed"]: row[METRIC] for row in rows if row["placement"] == placement and row.get(METRIC)}


def _interval(values):
    """Mean and 95% t interval over seeds (NaN bounds with fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def shift_table(rows):
    """Per width and placement: `(mean, low, high, seeds, mean test accuracy)` of the variance shift.

    Example:

    >>> rows = {8: [{"placement": "p", "seed": s, "variance_shift_max": v, "test_accuracy": 0.9}
    ...             for s, v in ((0, 2.0), (1, 4.0))]}
    >>> [round(v, 2) for v in shift_table(rows)[8]["p"]]
    [3.0, -9.71, 15.71, 2, 0.9]
    """
    table = {}
    for width, width_rows in rows.items():
        table[width] = {}
        for placement in _placements({width: width_rows}):
            shifts = list(_by_seed(width_rows, placement).values())
            accuracy = [row["test_accuracy"] for row in width_rows if row["placement"] == placement]
            if shifts:
                table[width][placement] = (*_interval(shifts), len(shifts), float(np.mean(accuracy)))
    return table


def doubling_slopes(rows):
    """Per placement: the change of log2(shift) per doubling of width, `(mean, low, high)` over seeds.

    Each seed's slope is the least-squares fit over the widths it has; a
    negative slope means the shift shrinks as the net gets wider (-1: it
    halves per doubling). Seeds with fewer than two widths are left out.

    Example:

    >>> rows = {w: [{"placement": "p", "seed": s, "variance_shift_max": 16 / w * (1 + s / 10)} for s in (0, 1)]
    ...         for w in (2, 4, 8)}
    >>> [round(v, 6) for v in doubling_slopes(rows)["p"]]
    [-1.0, -1.0, -1.0]
    """
    slopes = {}
    for placement in _placements(rows):
        per_seed = {}
        for width, width_rows in rows.items():
            for seed, shift in _by_seed(width_rows, placement).items():
                per_seed.setdefault(seed, []).append((math.log2(width), math.log2(shift)))
        fits = [np.polyfit(*zip(*points), 1)[0] for points in per_seed.values() if len(points) >= 2]
        if fits:
            slopes[placement] = _interval(fits)
    return slopes


def paired_ratio(rows, placement, reference):
    """Per width: `placement`'s shift over `reference`'s, geometric mean over seeds and its 95% interval.

    Example:

    >>> rows = {8: [{"placement": p, "seed": s, "variance_shift_max": v} for p, v in (("a", 1.5), ("b", 3.0))
    ...             for s in (0, 1)]}
    >>> paired_ratio(rows, "a", "b")[8]
    (0.5, 0.5, 0.5)
    """
    ratios = {}
    for width, width_rows in rows.items():
        mine, theirs = _by_seed(width_rows, placement), _by_seed(width_rows, reference)
        logs = [math.log2(mine[s] / theirs[s]) for s in mine if s in theirs]
        if logs:
            ratios[width] = tuple(2 ** v for v in _interval(logs))
    return ratios


def _number(value, digits=2):
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def markdown(rows):
    """The table of shifts per width and placement, then the trend per placement, as Markdown lines.

    Example:

    >>> print(markdown({8: [{"placement": "p", "seed": 0, "variance_shift_max": 2.0, "test_accuracy": 0.9}]}))
    | filters | p |
    |---:|---:|
    | 8 | 2.00 (n/a, n/a), 90.0% |
    """
    table = shift_table(rows)
    placements = _placements(rows)
    lines = []
    for width, cells in table.items():
        line = [str(width)]
        for placement in placements:
            mean, low, high, _, accuracy = cells.get(placement, (math.nan,) * 5)
            line.append(f"{_number(mean)} ({_number(low)}, {_number(high)}), {accuracy:.1%}")
        lines.append(line)
    return markdown_table(("filters", *placements), lines, align="r" * (1 + len(placements)))


def direction(slope):
    """The trend a slope interval shows, in words.

    Example:

    >>> direction((-0.4, -0.6, -0.2))
    'shrinks as width grows'
    """
    _, low, high = slope
    if high < 0:
        return "shrinks as width grows"
    if low > 0:
        return "grows with width"
    return "no direction separated from flat"


def figure(rows, path):
    """Variance shift against width, one line per placement (mean and 95% interval over seeds), as a PNG.

    Example:

    >>> figure(run("/tmp/width", (4, 8), seeds=(0, 1), epochs=1), "/tmp/width.png")  # doctest: +SKIP
    """
    from matplotlib import ticker

    table = shift_table(rows)
    placements = _placements(rows)
    fig = plots.new_figure((6.0, 3.8))
    ax = fig.add_subplot()
    for i, placement in enumerate(placements):
        widths = [w for w in table if placement in table[w]]
        mean, low, high = (np.array([table[w][placement][k] for w in widths]) for k in range(3))
        errors = np.nan_to_num(np.vstack([mean - low, high - mean]))
        # Each placement a little apart on the width axis, so that the intervals do not hide one another.
        offset = 2 ** ((i - (len(placements) - 1) / 2) * 0.04)
        ax.errorbar(np.array(widths) * offset, mean, yerr=errors, marker="o", capsize=3, label=placement)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")  # 3, not 3x10^0
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xticks(list(table), [str(w) for w in table])
    ax.set_xlabel("filters per convolution (width)")
    ax.set_ylabel("variance shift, largest BN layer")
    ax.axhline(1.0, color="0.6", linewidth=0.8)
    ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _files.write_atomic(path, buffer.getvalue())
    return pathlib.Path(path)


def summary_lines(rows):
    """The trend per placement and the Wide ResNet order against dropout directly before BatchNorm, in words.

    Example:

    >>> summary_lines({w: [{"placement": "p", "seed": s, "variance_shift_max": 8 / w + s / 10} for s in (0, 1)]
    ...                for w in (2, 4)})[0]
    'p: x0.51 per doubling of width (95% CI x0.43 to x0.59): shrinks as width grows.'
    """
    lines = []
    for placement, slope in doubling_slopes(rows).items():
        mean, low, high = slope
        lines.append(f"{placement}: x{2 ** mean:.2f} per doubling of width (95% CI x{_number(2 ** low)} to "
                     f"x{_number(2 ** high)}): {direction(slope)}.")
    if {"drop_before_weight", "drop_before_bn"} <= set(_placements(rows)):
        for width, (mean, low, high) in paired_ratio(rows, "drop_before_weight", "drop_before_bn").items():
            lines.append(f"filters {width}: drop_before_weight's shift is x{mean:.2f} of drop_before_bn's "
                         f"(95% CI x{_number(low)} to x{_number(high)}, paired by seed).")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="studies/width_trend", help="folder of the per-width studies")
    parser.add_argument("--figure", default="docs/guide/img/width_trend.png", help="where the PNG goes")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="comma-separated filters")
    parser.add_argument("--placements", default=",".join(PLACEMENTS), help="comma-separated placements")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs per run (default {EPOCHS})")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    rows = run(args.out, tuple(int(w) for w in args.widths.split(",")), workers=args.workers,
               verbose=0 if args.quiet else 1, placements=tuple(args.placements.split(",")),
               seeds=tuple(int(s) for s in args.seeds.split(",")), epochs=args.epochs)
    print("Variance shift (largest BN layer): mean (95% CI over seeds), and mean test accuracy")
    print(markdown(rows))
    print()
    print("\n".join(summary_lines(rows)))
    print(f"Wrote {figure(rows, args.figure)}")


if __name__ == "__main__":
    main()
