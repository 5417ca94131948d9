"""Figures of compare and the study report, drawn without pyplot (no global backend switch).

Every figure scales with the grid: one panel per architecture (or per
architecture and placement for learning curves), one row or line per
configuration (a run without its seed), seeds shown as points or as a band,
never one panel per run. Axes are zoomed to the data, not started at 0, so
that differences of a point or two stay visible.
"""

import math
import warnings

import numpy as np

# The row keys that make a configuration: its runs differ only by seed (used by plots, statistics and the report).
CONFIG_KEYS = ("architecture", "placement", "dropout", "dropout_rate", "norm")
ROW_HEIGHT = 0.24  # inches per configuration in the per-configuration figures


def new_figure(size):
    """A Matplotlib Figure with its own Agg canvas: no pyplot, no global backend switch.

    Example:

    >>> new_figure((4, 3)).add_subplot().plot([0, 1])  # doctest: +ELLIPSIS
    [...]
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _present(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _finite(values):
    return [float(v) for v in values if _present(v) and math.isfinite(v)]


def _placement_colors(placements):
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(placements) <= 10 else colormaps["tab20"]
    return {p: cmap(i % cmap.N) for i, p in enumerate(sorted(placements, key=str))}


def _short(summary):
    """The label without the architecture: each panel already names it."""
    arch = str(summary.config["architecture"])
    return summary.label[len(arch) + 3:] if summary.label.startswith(arch + " / ") else summary.label


def by_architecture(summaries):
    """architecture -> its summaries, in the order given (the report's ranking).

    Example:

    >>> by_architecture([])
    {}
    """
    groups = {}
    for s in summaries:
        groups.setdefault(s.config["architecture"], []).append(s)
    return groups


def _row_panels(summaries, width=5.8, columns=2):
    """One panel per architecture (two side by side, then wrapping), one row per configuration.

    Panel heights follow their number of configurations, so every row is
    equally tall and the figure stays as wide as a page.
    """
    groups = list(by_architecture(summaries).items())
    columns = min(columns, len(groups))
    lines = [groups[i:i + columns] for i in range(0, len(groups), columns)]
    heights = [max(len(members) for _, members in line) for line in lines]
    fig = new_figure((width * columns, ROW_HEIGHT * sum(heights) + 1.4 * len(lines) + 0.3))
    axes = fig.subplots(len(lines), columns, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    return fig, list(zip(axes.ravel(), groups))


def _set_rows(ax, members):
    ax.set_yticks(range(len(members)), [_short(s) for s in members], fontsize=8)
    ax.set_ylim(len(members) - 0.5, -0.5)  # best (first) at the top
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)


def seed_points(summaries, metric, label):
    """Per-seed values (dots) with mean and 95% CI (black) per configuration, panels per architecture.

    The shaded band is the best configuration's interval: a configuration
    whose mean lies inside it is hard to tell apart from the best by eye
    (the headline's paired test says so exactly). Returns None without data.

    Example:

    >>> fig = seed_points(report.summarize(rows), "test_accuracy", "test accuracy")  # doctest: +SKIP
    """
    summaries = [s for s in summaries if s.stat(metric)[2]]
    if not summaries:
        return None
    colors = _placement_colors({s.config["placement"] for s in summaries})
    fig, panels = _row_panels(summaries)
    for ax, (arch, members) in panels:
        best_mean, best_half, _ = members[0].stat(metric)
        if math.isfinite(best_half):
            ax.axvspan(best_mean - best_half, best_mean + best_half, color="0.88", zorder=0)
        for y, s in enumerate(members):
            values = _finite(s.values[metric])
            jitter = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(values, y + np.asarray(jitter), s=14, color=colors[s.config["placement"]], alpha=0.75,
                       linewidths=0, zorder=2)
            mean, half, _ = s.stat(metric)
            ax.errorbar(mean, y, xerr=half if math.isfinite(half) else None, fmt="D", color="black",
                        markersize=4, capsize=3, linewidth=1.2, zorder=3)
        _set_rows(ax, members)
        ax.set_title(f"{arch}", fontsize=10)
        ax.set_xlabel(f"{label} (dots: seeds; black: mean and 95% CI)", fontsize=8)
        if metric.endswith("accuracy"):
            # A wide interval (one collapsed seed) must not stretch the axis past what an accuracy can be.
            low, high = ax.get_xlim()
            ax.set_xlim(max(low, -0.01), min(high, 1.01))
            _percent(ax.xaxis)
    return fig


def _percent(axis):
    """Ticks as percentages, few enough not to collide; decimals follow the range (a zoomed axis needs them)."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axis.set_major_locator(MaxNLocator(nbins=6))
    axis.set_major_formatter(PercentFormatter(1.0))


def gap_pairs(summaries):
    """Clean gap next to reported gap per configuration (mean and 95% CI), panels per architecture.

    The line between the two markers is how much Keras's running training
    accuracy understates the final model's overfitting. Returns None without data.
    """
    summaries = [s for s in summaries if s.stat("clean_gap")[2] or s.stat("reported_gap")[2]]
    if not summaries:
        return None
    fig, panels = _row_panels(summaries)
    styles = {"clean_gap": ("clean gap (inference mode)", "tab:red", "o"),
              "reported_gap": ("reported gap (Keras running)", "tab:blue", "s")}
    for ax, (arch, members) in panels:
        for y, s in enumerate(members):
            means = [s.stat(m)[0] for m in styles]
            ax.plot(means, [y, y], color="0.6", linewidth=1, zorder=1)
            for offset, (metric, (text, color, marker)) in zip((-0.12, 0.12), styles.items()):
                mean, half, _ = s.stat(metric)
                ax.errorbar(mean, y + offset, xerr=half if math.isfinite(half) else None, fmt=marker,
                            color=color, markersize=4, capsize=2, linewidth=1, zorder=2,
                            label=text if y == 0 else None)
        ax.axvline(0, color="0.5", linewidth=0.8)
        _set_rows(ax, members)
        _percent(ax.xaxis)
        ax.set_title(f"{arch}: overfitting gap (train - val accuracy)", fontsize=10)
    fig.legend(*panels[0][0].get_legend_handles_labels(), loc="outside upper center", ncols=2, fontsize=8,
               frameon=False)
    return fig


def shift_vs_accuracy(summaries):
    """Mean test accuracy against mean BatchNorm variance shift, one point (with 95% CIs) per configuration.

    Colour is the placement, marker the architecture, so the figure stays
    readable at any number of configurations. Returns None without BatchNorm runs.
    """
    summaries = [s for s in summaries if s.stat("variance_shift_max")[2] and s.stat("test_accuracy")[2]]
    if not summaries:
        return None
    colors = _placement_colors({s.config["placement"] for s in summaries})
    markers = dict(zip(sorted(by_architecture(summaries), key=str), "os^vDP*X"))
    fig = new_figure((7.5, 5))
    ax = fig.add_subplot()
    for s in summaries:
        (x, xh, _), (y, yh, _) = s.stat("variance_shift_max"), s.stat("test_accuracy")
        ax.errorbar(x, y, xerr=xh if math.isfinite(xh) else None, yerr=yh if math.isfinite(yh) else None,
                    fmt=markers[s.config["architecture"]], color=colors[s.config["placement"]], markersize=6,
                    capsize=2, elinewidth=0.7, alpha=0.8)
    ax.axvline(1.0, color="0.5", linewidth=0.8)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", linestyle="", label=p) for p, c in colors.items()]
    handles += [Line2D([], [], color="0.3", marker=m, linestyle="", label=a) for a, m in markers.items()]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _percent(ax.yaxis)
    ax.set(xlabel="BatchNorm variance shift, max(r, 1/r) of the worst layer (1 = none)",
           ylabel="test accuracy", title="Variance shift against test accuracy (mean and 95% CI over seeds)")
    return fig


def _stack(histories, key):
    """Per-epoch values of `key` over seeds as an array (seeds x epochs, NaN-padded), or None."""
    series = [h.get(key) for h in histories if h.get(key)]
    if not series:
        return None
    epochs = max(len(s) for s in series)
    out = np.full((len(series), epochs), np.nan)
    for i, s in enumerate(series):
        out[i, : len(s)] = [np.nan if v is None else v for v in s]
    return out


def learning_curves(groups, title, keys=(("val_accuracy", "val", "-"),
                                        ("train_clean_accuracy", "train (inference mode)", "--"))):
    """Mean over seeds with a min-max band, one panel per architecture and placement, one colour per configuration.

    Args:
        groups: list of `(config, label, histories)`: a configuration (dict with
            `architecture` and `placement`), its legend label and its runs'
            per-epoch histories (dicts of lists).
        title: str. The figure title.
        keys: tuple of `(history key, text, line style)` drawn per configuration.

    Returns:
        A Figure, or None when no history holds any of `keys`.

    Example:

    >>> learning_curves([({"architecture": "mlp", "placement": "none"}, "none",
    ...                   [{"val_accuracy": [0.5, 0.6]}, {"val_accuracy": [0.4, 0.7]}])], "demo")  # doctest: +ELLIPSIS
    <Figure ...>
    """
    groups = [g for g in groups if any(_stack(g[2], k) is not None for k, _, _ in keys)]
    if not groups:
        return None
    panels = {}
    for config, label, histories in groups:
        panels.setdefault((config["architecture"], config["placement"]), []).append((label, histories))
    columns = min(3, len(panels))
    lines = math.ceil(len(panels) / columns)
    fig = new_figure((4.6 * columns, 3.0 * lines + 0.6))
    axes = fig.subplots(lines, columns, squeeze=False, sharey=True).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    cmap = colormaps["viridis"]
    for ax, ((arch, placement), members) in zip(axes, sorted(panels.items(), key=lambda kv: str(kv[0]))):
        for i, (label, histories) in enumerate(members):
            color = cmap(i / max(1, len(members) - 1) * 0.85) if len(members) > 1 else "tab:blue"
            for key, text, style in keys:
                values = _stack(histories, key)
                if values is None:
                    continue
                # Early stopping ends seeds at different epochs: a mean over the last one or two would jump.
                kept = np.sum(np.isfinite(values), axis=0) * 2 >= values.shape[0]
                values = values[:, kept]
                epochs = np.arange(1, values.shape[1] + 1)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # an epoch with NaN only: a gap
                    ax.plot(epochs, np.nanmean(values, axis=0), style, color=color, linewidth=1.3,
                            label=label if key == keys[0][0] else None)
                    if values.shape[0] > 1:
                        ax.fill_between(epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                                        color=color, alpha=0.15, linewidth=0)
        ax.set_title(f"{arch} / {placement}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        _percent(ax.yaxis)
        ax.grid(color="0.92")
        if len(members) > 1 or members[0][0] != placement:
            ax.legend(fontsize=6, loc="lower right")
    styles = ", ".join(f"{style} {text}" for _, text, style in keys)
    fig.suptitle(f"{title} (line: mean over seeds, band: min-max; {styles})", fontsize=10)
    return fig


def run_groups(rows, histories):
    """Runs of compare grouped by configuration: `(config, label, histories)` per configuration.

    Example:

    >>> [label for _, label, _ in run_groups(comparison.rows, histories)]  # doctest: +SKIP
    ['standard 0.2', 'no dropout']
    """
    groups = {}
    for row, history in zip(rows, histories):
        key = tuple(row.get(k) for k in CONFIG_KEYS)
        if key not in groups:
            rate = row.get("dropout_rate")
            label = f"{row.get('dropout')} {rate:g}" if rate else "no dropout"
            if row.get("placement") is None:  # not built by kerasreg: only the run name says what it is
                label = row["run"]
            groups[key] = (dict(zip(CONFIG_KEYS, key)), label, [])
        groups[key][2].append(history)
    return list(groups.values())


def gap_curves(dataset, rows, histories):
    """Clean-gap accuracy per epoch, mean and band over seeds per configuration (None without gap history)."""
    return learning_curves(run_groups(rows, histories), f"Clean overfitting gap per epoch ({dataset})",
                           keys=(("clean_gap_accuracy", "clean gap", "-"),))


def accuracy_vs_gap(dataset, rows):
    """Test accuracy against final clean gap, one point per run coloured by placement (None without data)."""
    points = [row for row in rows if _present(row["clean_gap"]) and _present(row["test_accuracy"])]
    if not points:
        return None
    colors = _placement_colors({row.get("placement") for row in points})
    fig = new_figure((7.5, 4.5))
    ax = fig.add_subplot()
    for placement, color in colors.items():
        mine = [row for row in points if row.get("placement") == placement]
        ax.scatter([r["clean_gap"] for r in mine], [r["test_accuracy"] for r in mine], color=color, s=18,
                   label=str(placement))
    if len(points) <= 12:  # names stay legible only for a handful of runs
        for row in points:
            ax.annotate(row["run"], (row["clean_gap"], row["test_accuracy"]), fontsize="x-small",
                        xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="final clean gap", ylabel="test accuracy (re-evaluated)",
           title=f"Test accuracy against clean gap ({dataset})")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def train_val_curves(dataset, rows, histories):
    """Train (running and inference-mode) and validation accuracy, mean and band over seeds per configuration."""
    keys = (("val_accuracy", "val", "-"), ("train_clean_accuracy", "train (inference mode)", "--"),
            ("accuracy", "train (running, training mode)", ":"))
    return learning_curves(run_groups(rows, histories), f"Train and validation accuracy ({dataset})", keys=keys)


def study_figures(summaries, groups, out):
    """The study report's figures as `study_*.png` in `out`; returns their paths.

    Args:
        summaries: ranked `ConfigSummary` list of the report.
        groups: `(config, label, histories)` per configuration, for the learning curves.
        out: path. Folder the PNGs are written to.

    Example:

    >>> study_figures(report.summarize(rows), [], pathlib.Path("studies/quick"))  # doctest: +SKIP
    [PosixPath('studies/quick/study_test_accuracy.png'), ...]
    """
    figures = [
        ("study_test_accuracy.png", seed_points(summaries, "test_accuracy", "test accuracy")),
        ("study_gaps.png", gap_pairs(summaries)),
        ("study_variance_shift.png", shift_vs_accuracy(summaries)),
        ("study_learning_curves.png", learning_curves(groups, "Validation and train accuracy per configuration")),
    ]
    paths = []
    for name, fig in figures:
        if fig is not None:
            fig.savefig(out / name, dpi=100)
            paths.append(out / name)
    return paths
