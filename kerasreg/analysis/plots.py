"""Figures of compare and the study report, drawn without pyplot (no global backend switch)."""

import math


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


def gap_curves(dataset, rows, histories):
    """Clean-gap accuracy per epoch, one line per run (None without gap history)."""
    curves = [(row["run"], h["clean_gap_accuracy"]) for row, h in zip(rows, histories)
              if h.get("clean_gap_accuracy")]
    if not curves:
        return None
    fig = new_figure((7, 4.5))
    ax = fig.add_subplot()
    for run, gap in curves:
        ax.plot(range(1, len(gap) + 1), gap, marker=".", label=run)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="epoch", ylabel="clean gap (train acc in inference mode - val acc)",
           title=f"Clean overfitting gap per epoch ({dataset})")
    ax.legend(fontsize="small")
    return fig


def accuracy_vs_gap(dataset, rows):
    """Test accuracy against final clean gap, one point per run (None without data)."""
    points = [row for row in rows if _present(row["clean_gap"]) and _present(row["test_accuracy"])]
    if not points:
        return None
    fig = new_figure((7, 4.5))
    ax = fig.add_subplot()
    for row in points:
        ax.scatter(row["clean_gap"], row["test_accuracy"])
        ax.annotate(row["run"], (row["clean_gap"], row["test_accuracy"]), fontsize="x-small",
                    xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="final clean gap", ylabel="test accuracy (re-evaluated)",
           title=f"Test accuracy against clean gap ({dataset})")
    return fig


def train_val_curves(dataset, rows, histories):
    """Train (running and inference-mode) and validation accuracy curves per run."""
    curves = [("accuracy", "train (running, training mode)"),
              ("train_clean_accuracy", "train (inference mode)"), ("val_accuracy", "val")]
    runs = [(row, h) for row, h in zip(rows, histories) if any(h.get(key) for key, _ in curves)]
    if not runs:
        return None
    columns = min(3, len(runs))
    lines = math.ceil(len(runs) / columns)
    fig = new_figure((4.5 * columns, 3.2 * lines))
    for i, (row, history) in enumerate(runs, start=1):
        ax = fig.add_subplot(lines, columns, i)
        for key, label in curves:
            if history.get(key):
                ax.plot(range(1, len(history[key]) + 1), history[key], label=label)
        ax.set_title(row["run"], fontsize="small")
        ax.set(xlabel="epoch", ylabel="accuracy")
        if i == 1:
            ax.legend(fontsize="x-small")
    fig.suptitle(f"Train and validation accuracy ({dataset})")
    return fig


def summary_bars(summaries, out, metric_labels):
    """Bar charts of mean and 95% CI per configuration, and test accuracy against clean gap; returns PNG paths."""
    paths = []
    labels = [s.label for s in summaries]
    for metric in ("test_accuracy", "clean_gap", "variance_shift_max"):
        stats_ = [s.stat(metric) for s in summaries]
        if not any(n for _, _, n in stats_):
            continue
        fig = new_figure((8, 0.4 * len(labels) + 1.5))
        ax = fig.add_subplot()
        means = [m for m, _, _ in stats_]
        errors = [h if math.isfinite(h) else 0 for _, h, _ in stats_]
        ax.barh(range(len(labels)), means, xerr=errors, color="tab:blue", alpha=0.8, capsize=3)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set_xlabel(f"{metric_labels[metric]} (mean, 95% CI over seeds)")
        if metric == "variance_shift_max":
            ax.axvline(1.0, color="grey", lw=1)
        path = out / f"study_{metric}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        paths.append(path)
    fig = new_figure((6, 4.5))
    ax = fig.add_subplot()
    for s in summaries:
        (gx, gh, _), (ax_, ah, _) = s.stat("clean_gap"), s.stat("test_accuracy")
        ax.errorbar(gx, ax_, xerr=gh if math.isfinite(gh) else None, yerr=ah if math.isfinite(ah) else None,
                    fmt="o", capsize=3, label=s.label)
    ax.set_xlabel("clean gap (train acc in inference mode - val acc)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7, loc="best")
    path = out / "study_accuracy_vs_gap.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return paths + [path]
