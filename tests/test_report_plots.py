"""The report's figures at full-study size (2 models x 31 configurations x 3 seeds = 186 runs): panels per
architecture, rows per configuration."""

import numpy as np
import pytest

import kerasreg
from kerasreg.analysis import plots, report
from kerasreg.models import get_placement


@pytest.fixture(scope="module")
def full_grid():
    """Compare-like rows and histories for a 186-run grid, with made-up numbers."""
    rng = np.random.default_rng(0)
    rows, histories = [], []
    grid = kerasreg.StudyConfig(models=["mlp", "cnn1d"], rates=[0.1, 0.2, 0.3, 0.5], seeds=[0, 1, 2])
    for config in grid.runs():
        placement = get_placement(config.placement)
        accuracy = 0.6 + 0.05 * rng.random() + rng.normal(0, 0.01)
        gap = 0.3 * rng.random()
        rows.append({
            "run": config.run_name(), "architecture": config.model, "placement": config.placement,
            "dropout": (config.dropout or placement.dropout_kind or "standard") if placement.uses_dropout else "none",
            "dropout_rate": config.dropout_rate if placement.uses_dropout else 0.0, "norm": config.norm,
            "seed": config.seed, "test_accuracy": accuracy, "clean_gap": gap, "reported_gap": gap - 0.05,
            "variance_shift_max": 1.2 + rng.random() if placement.uses_norm else None, "train_time": 10.0,
        })
        epochs = np.arange(1, 11)
        histories.append({"val_accuracy": list(accuracy * (1 - np.exp(-epochs / 3))),
                          "train_clean_accuracy": list((accuracy + gap) * (1 - np.exp(-epochs / 3)))})
    return rows, histories


def test_the_grid_has_186_runs_in_62_configurations(full_grid):
    rows, _ = full_grid
    assert len(rows) == 186
    assert len(report.summarize(rows)) == 62


def test_seed_points_have_one_panel_per_architecture_one_row_per_configuration_and_a_zoomed_axis(full_grid):
    rows, _ = full_grid
    summaries = report.summarize(rows)
    fig = plots.seed_points(summaries, "test_accuracy", "test accuracy")
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["mlp", "cnn1d"] or sorted(ax.get_title() for ax in axes) == ["cnn1d", "mlp"]
    for ax in axes:
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(labels) == 31 and len(set(labels)) == 31
        low, high = ax.get_xlim()
        values = [r["test_accuracy"] for r in rows if r["architecture"] == ax.get_title()]
        assert low <= min(values) and high >= max(values)
        assert low > 0.5 * min(values), "the axis is zoomed to the data, not started at 0"
    assert fig.get_figheight() < 10, "31 rows per panel fit a screen"


def test_gap_pairs_show_clean_and_reported_gap_for_every_configuration(full_grid):
    rows, _ = full_grid
    fig = plots.gap_pairs(report.summarize(rows))
    for ax in fig.get_axes():
        assert len(ax.get_yticklabels()) == 31
        clean = [line for line in ax.get_lines() if line.get_marker() == "o"]
        reported = [line for line in ax.get_lines() if line.get_marker() == "s"]
        assert len(clean) == len(reported) == 31


def test_variance_shift_plot_has_one_point_per_configuration_with_batchnorm(full_grid):
    rows, _ = full_grid
    summaries = report.summarize(rows)
    fig = plots.shift_vs_accuracy(summaries)
    (ax,) = [a for a in fig.get_axes()]
    points = ax.containers  # one errorbar (point with both intervals) per configuration
    with_bn = [s for s in summaries if s.stat("variance_shift_max")[2]]
    assert len(points) == len(with_bn) < len(summaries)


def test_learning_curves_have_one_panel_per_architecture_and_placement_never_per_run(full_grid):
    rows, histories = full_grid
    fig = plots.learning_curves(plots.run_groups(rows, histories), "curves")
    visible = [ax for ax in fig.get_axes() if ax.get_visible()]
    pairs = {(r["architecture"], r["placement"]) for r in rows}
    assert len(visible) == len(pairs) == 20
    for ax in visible:
        configurations = len({(r["dropout"], r["dropout_rate"]) for r in rows
                              if f"{r['architecture']} / {r['placement']}" == ax.get_title()})
        assert len(ax.get_lines()) == 2 * configurations, "a mean line per configuration and curve, not per seed"


def test_compare_curves_group_seeds_of_one_configuration():
    rows = [{"run": f"r{seed}", "architecture": "mlp", "placement": "dropout", "dropout": "standard",
             "dropout_rate": 0.2, "norm": "batch", "seed": seed} for seed in range(3)]
    histories = [{"val_accuracy": [0.5, 0.6 + 0.01 * seed], "clean_gap_accuracy": [0.0, 0.1]} for seed in range(3)]
    (group,) = plots.run_groups(rows, histories)
    assert group[1] == "standard 0.2" and len(group[2]) == 3
    fig = plots.gap_curves("mnist1d", rows, histories)
    (ax,) = fig.get_axes()
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.0, 0.1])


def test_curves_of_early_stopped_seeds_end_where_most_seeds_stopped():
    groups = [({"architecture": "mlp", "placement": "none"}, "no dropout",
               [{"val_accuracy": [0.1] * n} for n in (4, 6, 10)])]
    fig = plots.learning_curves(groups, "curves", keys=(("val_accuracy", "val", "-"),))
    (line,) = fig.get_axes()[0].get_lines()
    assert list(line.get_xdata()) == [1, 2, 3, 4, 5, 6], "epochs 7-10 were run by one seed of three"
