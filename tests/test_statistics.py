"""Paired statistics: the design is paired by seed, and the tests give known answers on constructed data."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower

import kerasreg
from kerasreg.analysis import statistics


def _rows(values, architecture="mlp", metric="test_accuracy"):
    """Rows of a study: values is {placement: [per-seed value, ...]}."""
    return [{"architecture": architecture, "placement": placement, "dropout": "standard", "dropout_rate": 0.2,
             "norm": "batch", "seed": seed, metric: value}
            for placement, per_seed in values.items() for seed, value in enumerate(per_seed)]


def test_configurations_of_one_seed_share_split_and_data_order():
    first, second = (kerasreg.RunConfig(placement=p, seed=3, epochs=1) for p in ("bn_act_drop", "drop_before_bn"))
    (data_a, _), (data_b, _) = kerasreg.runs.prepare(first), kerasreg.runs.prepare(second)
    for split in ("train", "val", "test"):
        for a, b in zip(data_a.as_numpy(split), data_b.as_numpy(split)):
            np.testing.assert_array_equal(a, b)
    batches = [[y.numpy() for _, y in data.pipeline("train", 100, shuffle=True, seed=config.seed).take(3)]
               for data, config in ((data_a, first), (data_b, second))]
    np.testing.assert_array_equal(batches[0], batches[1])
    other_seed, _ = kerasreg.runs.prepare(kerasreg.RunConfig(placement="bn_act_drop", seed=4, epochs=1))
    assert not np.array_equal(other_seed.as_numpy("val")[1], data_a.as_numpy("val")[1]), "a seed picks the split"
    study = kerasreg.StudyConfig(placements=["none", "ic"], seeds=[0, 1], epochs=1)
    by_seed = {}
    for run in study.runs():
        by_seed.setdefault(run.seed, set()).add((run.dataset, run.validation_split, run.batch_size))
    assert sorted(by_seed) == [0, 1] and all(len(v) == 1 for v in by_seed.values())


def test_pairing_separates_a_small_consistent_difference_that_seed_noise_hides():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.03, size=5)  # split-to-split variation shared by both configurations
    best = 0.70 + seed_effect + rng.normal(0, 0.001, size=5)
    other = best - 0.01 + rng.normal(0, 0.001, size=5)
    (c,) = statistics.paired_comparisons(_rows({"ic": list(best), "none": list(other)}))
    assert (c.group, c.best, c.other, c.n_pairs, c.test) == ("mlp", "ic / standard 0.2", "none / standard 0.2", 5,
                                                              "paired t-test")
    assert c.mean_difference == pytest.approx(np.mean(best - other))
    assert c.ci_low < 0.01 < c.ci_high and c.ci_low > 0
    assert c.p_value == pytest.approx(stats.ttest_rel(best, other).pvalue)
    assert c.distinguishable
    assert stats.ttest_ind(best, other, equal_var=False).pvalue > 0.05, "an unpaired test would miss it"


def test_holm_adjusts_over_every_comparison_of_every_metric_and_group():
    rng = np.random.default_rng(1)
    mlp = {"a": list(0.8 + rng.normal(0, 0.01, 4)), "b": list(0.78 + rng.normal(0, 0.01, 4)),
           "c": list(0.75 + rng.normal(0, 0.01, 4))}
    resnet = {"a": list(0.9 + rng.normal(0, 0.01, 4)), "b": list(0.85 + rng.normal(0, 0.01, 4))}
    rows = _rows(mlp) + _rows(resnet, architecture="resnet_small")
    for row in rows:
        row["clean_gap"] = rng.normal(0.05, 0.02)
    comparisons = statistics.paired_comparisons(rows, ("test_accuracy", "clean_gap"))
    assert len(comparisons) == 6  # (2 + 1) per metric
    raw = np.array([c.p_value for c in comparisons])
    order = np.argsort(raw)
    expected = np.empty_like(raw)
    expected[order] = np.minimum(1, np.maximum.accumulate(raw[order] * (len(raw) - np.arange(len(raw)))))
    np.testing.assert_allclose([c.p_holm for c in comparisons], expected)
    assert all(c.distinguishable == (c.p_holm < 0.05) for c in comparisons)


def test_lower_is_better_metrics_pick_the_smallest_as_best():
    (c,) = statistics.paired_comparisons(_rows({"ic": [0.02, 0.03, 0.025], "none": [0.2, 0.25, 0.22]},
                                               metric="clean_gap"), "clean_gap")
    assert c.best.startswith("ic") and c.mean_difference < 0


def test_noise_is_called_not_distinguishable_with_an_estimate_of_the_seeds_needed():
    rng = np.random.default_rng(2)
    best = 0.66 + rng.normal(0, 0.01, 5)
    other = best - 0.003 + rng.normal(0, 0.008, 5)
    (c,) = statistics.paired_comparisons(_rows({"ic": list(best), "none": list(other)}))
    assert not c.distinguishable
    d = best - other
    effect = abs(d.mean()) / d.std(ddof=1)
    power = TTestPower()
    assert c.seeds_needed > 5
    assert power.power(effect, c.seeds_needed, 0.05) >= 0.8 > power.power(effect, c.seeds_needed - 1, 0.05)
    sentence = statistics.describe_comparison(c)
    assert "not distinguishable with 5 seeds" in sentence and f"about {c.seeds_needed} seeds" in sentence
    (line,) = statistics.comparison_findings([c])
    assert "not distinguishable from it with 5 seeds" in line and "separated" not in line


def test_a_large_difference_is_reported_as_separated_with_its_interval():
    comparisons = statistics.paired_comparisons(_rows({"uout": [0.98, 0.985, 0.99],
                                                       "drop_before_bn": [0.90, 0.91, 0.93]},
                                                      architecture="resnet_small"))
    (line,) = statistics.comparison_findings(comparisons)
    assert line.startswith("resnet_small, test accuracy: best uout")
    assert "separated from it" in line and "drop_before_bn" in line and "+7.2 points" in line  # mean of 0.08, 0.075, 0.06


def test_wilcoxon_is_available_and_named():
    rows = _rows({"a": [0.9 + 0.01 * i for i in range(8)], "b": [0.85 + 0.011 * i for i in range(8)]})
    (c,) = statistics.paired_comparisons(rows, test="wilcoxon")
    assert c.test == "Wilcoxon signed-rank test"
    assert c.p_value == pytest.approx(stats.wilcoxon([0.05 - 0.001 * i for i in range(8)]).pvalue)


def test_one_seed_is_not_testable():
    (c,) = statistics.paired_comparisons(_rows({"a": [0.9], "b": [0.8]}))
    assert c.n_pairs == 1 and not c.distinguishable and c.test == "none" and c.seeds_needed is None
    assert "not testable" in statistics.describe_comparison(c)


def test_only_seeds_both_configurations_completed_are_paired():
    rows = _rows({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81]})
    (c,) = statistics.paired_comparisons(rows)
    assert c.n_pairs == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"test": "welch"}, "test"),
    ({"alpha": 1.5}, "alpha"),
    ({"metric": "mystery"}, "higher_is_better"),
])
def test_bad_arguments_are_rejected_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        statistics.paired_comparisons(_rows({"a": [0.9, 0.91], "b": [0.8, 0.81]}), **kwargs)


def test_two_runs_of_one_configuration_with_one_seed_are_rejected():
    rows = _rows({"a": [0.9, 0.91], "b": [0.8, 0.81]})
    with pytest.raises(ValueError, match="share seed 0"):
        statistics.paired_comparisons(rows + rows[:1])


def test_report_findings_use_the_paired_tests_per_architecture():
    from kerasreg.analysis import report

    mlp = _rows({"bn_before_act": [0.66, 0.65, 0.67], "bn_act_drop": [0.655, 0.652, 0.668]})
    deep = _rows({"uout": [0.98, 0.985, 0.99], "drop_before_bn": [0.90, 0.91, 0.93]}, architecture="resnet_small")
    rows = [{**row, "clean_gap": 0.05, "reported_gap": 0.04, "variance_shift_max": None, "train_time": 1.0}
            for row in mlp + deep]
    lines = report.findings(report.summarize(rows), rows)
    text = "\n".join(lines)
    assert "Best test accuracy (mlp)" in text and "Best test accuracy (resnet_small)" in text
    assert "not distinguishable from it with 3 seeds: bn_act_drop" in text
    assert "separated from it (paired, Holm-corrected): drop_before_bn" in text
    assert any(line.startswith("Does BatchNorm reduce the need for dropout (mlp)?") for line in lines)


def test_report_findings_quote_the_reestimation_gain_paired_by_seed():
    from kerasreg.analysis import report

    rows = _rows({"drop_before_bn": [0.90, 0.91, 0.92], "uout": [0.98, 0.985, 0.99]}, architecture="resnet_small")
    for row in rows:
        gain = 0.05 if row["placement"] == "drop_before_bn" else 0.0
        row.update(test_accuracy_reestimated=row["test_accuracy"] + gain + 0.002 * row["seed"], clean_gap=0.05,
                   reported_gap=0.04, variance_shift_max=None, train_time=1.0)
    text = "\n".join(report.findings(report.summarize(rows), rows))
    assert "resnet_small / drop_before_bn / standard 0.2 +5.2 points" in text
    assert "resnet_small / uout / standard 0.2 +0.2 points" in text
