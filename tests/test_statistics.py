"""Paired statistics against a fixed reference: paired by seed, each decision read off its interval."""

import numpy as np
import pytest
from scipy import stats

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
    reference = 0.70 + seed_effect + rng.normal(0, 0.001, size=5)
    other = reference + 0.01 + rng.normal(0, 0.001, size=5)
    (c,) = statistics.paired_comparisons(_rows({"none": list(reference), "ic": list(other)}),
                                         reference="none / standard 0.2")
    assert (c.group, c.reference, c.other, c.n_pairs) == ("mlp", "none / standard 0.2", "ic / standard 0.2", 5)
    assert c.mean_difference == pytest.approx(np.mean(other - reference))
    assert 0 < c.ci_low < 0.01 < c.ci_high
    assert c.p_value == pytest.approx(stats.ttest_rel(other, reference).pvalue)
    assert c.distinguishable and c.confidence == 0.95
    assert stats.ttest_ind(other, reference, equal_var=False).pvalue > 0.05, "an unpaired test would miss it"


def test_every_interval_is_at_the_bonferroni_level_of_the_whole_family_and_makes_the_decision():
    rng = np.random.default_rng(1)
    mlp = {"a": list(0.8 + rng.normal(0, 0.01, 4)), "b": list(0.78 + rng.normal(0, 0.01, 4)),
           "c": list(0.75 + rng.normal(0, 0.01, 4))}
    resnet = {"a": list(0.9 + rng.normal(0, 0.01, 4)), "b": list(0.85 + rng.normal(0, 0.01, 4))}
    rows = _rows(mlp) + _rows(resnet, architecture="resnet_small")
    for row in rows:
        row["clean_gap"] = rng.normal(0.05, 0.02)
    comparisons = statistics.paired_comparisons(rows, ("test_accuracy", "clean_gap"), reference="a / standard 0.2")
    assert len(comparisons) == 6  # (2 + 1) per metric
    assert {c.confidence for c in comparisons} == {1 - 0.05 / 6}
    for c in comparisons:
        values = mlp if c.group == "mlp" else resnet
        if c.metric == "test_accuracy":
            d = np.array(values[c.other[0]]) - np.array(values["a"])
            low, high = stats.ttest_1samp(d, 0).confidence_interval(1 - 0.05 / 6)
            assert (c.ci_low, c.ci_high) == (pytest.approx(low), pytest.approx(high))
        assert c.distinguishable == (c.ci_low > 0 or c.ci_high < 0) == (c.p_adjusted < 0.05)
        assert c.p_adjusted == pytest.approx(min(1, 6 * c.p_value))
    assert any(c.distinguishable for c in comparisons) and not all(c.distinguishable for c in comparisons)


def test_noise_is_not_separated_and_says_how_many_seeds_would_decide_it():
    rng = np.random.default_rng(2)
    reference = 0.66 + rng.normal(0, 0.01, 5)
    other = reference + 0.003 + rng.normal(0, 0.008, 5)
    (c,) = statistics.paired_comparisons(_rows({"ic": list(reference), "none": list(other)}),
                                         reference="ic / standard 0.2")
    assert c.decision == "not separated" and not c.level
    d = other - reference
    half = [stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n) for n in (c.seeds_needed - 1, c.seeds_needed)]
    assert c.seeds_needed > 5 and half[1] < abs(d.mean()) <= half[0]
    sentence = statistics.describe_comparison(c)
    assert "not separated with 5 seeds" in sentence and f"about {c.seeds_needed} seeds would decide it" in sentence
    (line,) = statistics.comparison_findings([c])
    assert "not separated with 5 seeds: none / standard 0.2" in line and "separated:" not in line


def test_level_needs_the_whole_interval_inside_the_margin():
    base = [0.98, 0.97, 0.985, 0.975, 0.99]
    rows = _rows({"ref": base, "close": [v + 0.001 * (-1) ** i for i, v in enumerate(base)],
                  "behind": [v - 0.02 + 0.002 * (-1) ** i for i, v in enumerate(base)],
                  "vague": [v + 0.004 + 0.012 * (-1) ** i for i, v in enumerate(base)]})
    found = {c.other.split(" ")[0]: c for c in
             statistics.paired_comparisons(rows, reference="ref / standard 0.2", margin=0.01)}
    assert found["close"].decision == "level" and -0.01 < found["close"].ci_low < found["close"].ci_high < 0.01
    assert found["behind"].decision == "separated", "a 2-point deficit is never level"
    assert found["vague"].decision == "not separated" and found["vague"].ci_high > 0.01
    assert "level within ±1.0 points (5 seeds)" in statistics.describe_comparison(found["close"])
    without = statistics.paired_comparisons(rows, reference="ref / standard 0.2")
    assert not any(c.level for c in without), "no margin, no level"


def test_one_seed_is_not_testable():
    (c,) = statistics.paired_comparisons(_rows({"a": [0.9], "b": [0.8]}), reference="a / standard 0.2")
    assert c.n_pairs == 1 and c.decision == "not testable" and c.seeds_needed is None
    assert "not testable" in statistics.describe_comparison(c)


def test_only_seeds_both_configurations_completed_are_paired():
    rows = _rows({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81]})
    (c,) = statistics.paired_comparisons(rows, reference="a / standard 0.2")
    assert c.n_pairs == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 1.5}, "alpha"),
    ({"reference": "c / standard 0.2"}, r"reference 'c / standard 0.2' has no measured run in group 'mlp'\. "
                                        r"Configurations there: a / standard 0.2, b / standard 0.2"),
])
def test_bad_arguments_are_rejected_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        statistics.paired_comparisons(_rows({"a": [0.9, 0.91], "b": [0.8, 0.81]}),
                                      **{"reference": "a / standard 0.2", **kwargs})


def test_two_runs_of_one_configuration_with_one_seed_are_rejected():
    rows = _rows({"a": [0.9, 0.91], "b": [0.8, 0.81]})
    with pytest.raises(ValueError, match="share seed 0"):
        statistics.paired_comparisons(rows + rows[:1], reference="a / standard 0.2")


def test_identical_differences_use_the_sign_tests_interval():
    (two,) = statistics.paired_comparisons(_rows({"a": [0.953, 0.955], "b": [0.96, 0.962]}),
                                           reference="a / standard 0.2")
    assert (two.ci_low, two.ci_high) == (-np.inf, np.inf) and two.decision == "not separated"
    assert two.seeds_needed == 6  # 2 / 2**6 <= 0.05 < 2 / 2**5
    assert "unbounded" in statistics.describe_comparison(two)
    seven = [0.9 + 0.01 * i for i in range(7)]
    (c,) = statistics.paired_comparisons(_rows({"a": seven, "b": [v + 0.007 for v in seven]}),
                                         reference="a / standard 0.2")  # float noise
    assert c.p_value == pytest.approx(2 / 2 ** 7) and c.distinguishable
    assert c.ci_low == pytest.approx(0.007) and c.ci_high == pytest.approx(0.007)
