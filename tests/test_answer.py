"""The study's answer: fixed contrasts against the reference, decisions read off their intervals, in 8 short lines."""

import re

import numpy as np

import kerasreg
from kerasreg.analysis import answer, report

# Per-seed test accuracy shaped like the quick study's finding: in the deep net dropout feeding BatchNorm
# costs points and dropout after the last BN does not; in the shallow net having dropout matters.
DEEP = {"bn_before_act": 0.9855, "bn_act_drop": 0.960, "drop_before_bn": 0.955, "head_dropout": 0.985,
        "uout": 0.986}
SHALLOW = {"none": 0.610, "dropout": 0.675, "bn_before_act": 0.615, "bn_act_drop": 0.6755, "ic": 0.676}
SEEDS = 5


def _rows(means, architecture, rate, noise=0.002, noise_by=None):
    scale = np.array([(noise_by or {}).get(placement, noise) for placement in means])[:, None]
    spread = np.random.default_rng(0).normal(0, 1, size=(len(means), SEEDS)) * scale
    seed_effect = np.linspace(-0.01, 0.01, SEEDS)  # shared by all placements of a seed: what pairing removes
    return [{"architecture": architecture, "placement": placement,
             "dropout": "uout" if placement == "uout" else "standard",
             "dropout_rate": rate if placement not in ("none", "bn_before_act") else 0.0, "norm": "batch",
             "seed": seed, "test_accuracy": float(mean + seed_effect[seed] + spread[i, seed]),
             "clean_gap": 0.05, "reported_gap": 0.04, "variance_shift_max": None, "train_time": 1.0}
            for i, (placement, mean) in enumerate(means.items()) for seed in range(SEEDS)]


def _arm(means, architecture, rate, **fields):
    return kerasreg.StudyConfig(models=[architecture], placements=list(means), rates=[rate],
                                seeds=list(range(SEEDS)), **fields)


def _answer(rows, *configs):
    arms = [arm for config in configs for arm in config.contrast_arms()]
    return report.analyse(report.summarize(rows), rows, arms, dataset="mnist1d").answer


def test_the_answer_fits_eight_short_lines_with_the_report_path():
    lines = _answer(_rows(DEEP, "resnet_small", 0.5) + _rows(SHALLOW, "mlp", 0.2),
                    _arm(DEEP, "resnet_small", 0.5), _arm(SHALLOW, "mlp", 0.2))
    assert len(lines) == 7, "the question, three lines per architecture; the report's path is the eighth"
    assert all(len(line) < 120 for line in lines), [line for line in lines if len(line) >= 120]
    assert lines[0] == ("Where should Dropout and BatchNorm go? mnist1d, vs a fixed reference, paired by seed, "
                        "5% family-wise error per arm:")
    assert not any("(s)" in line for line in lines)


def test_deep_net_answer_names_the_costly_placements_against_batchnorm_alone_and_the_remedy():
    deep = _answer(_rows(DEEP, "resnet_small", 0.5), _arm(DEEP, "resnet_small", 0.5))[1:]
    first, costs, advice = deep
    assert first.startswith("resnet_small: best uout 98.6") and "against bn_before_act 98.5" in first
    assert re.search(r"level \(within ±1\.0 points\): head_dropout, uout\.$", first), first
    assert re.match(r"resnet_small: separated, points \(98\.8% CI\): drop_before_bn -3\.\d \(-\d\.\d, -\d\.\d\), "
                    r"bn_act_drop -2\.\d \(-\d\.\d, -\d\.\d\)\.$", costs), costs
    assert advice == ("resnet_small: keep dropout off BatchNorm's input; head_dropout, uout are not behind "
                      "bn_before_act beyond noise.")


def test_the_reference_is_fixed_by_the_study_file_not_by_the_results():
    rows = _rows(DEEP, "resnet_small", 0.5)
    first = _answer(rows, _arm(DEEP, "resnet_small", 0.5, reference="head_dropout"))[1]
    assert "against head_dropout 98.4" in first and "bn_before_act" in first
    without_bn = {p: v for p, v in DEEP.items() if p != "bn_before_act"}
    rows = _rows(without_bn, "resnet_small", 0.5)
    assert "against bn_act_drop" in _answer(rows, _arm(without_bn, "resnet_small", 0.5))[1], "first placement"


def test_shallow_net_answer_says_batchnorm_alone_does_not_replace_dropout():
    lines = _answer(_rows(SHALLOW, "mlp", 0.2), _arm(SHALLOW, "mlp", 0.2))
    first, separated, advice = lines[1:]
    assert first.startswith("mlp: best ic 67.6") and "against bn_before_act 61.3" in first
    assert "level (within ±1.0 points): none" in first
    assert "ic +6." in separated and "bn_act_drop +6." in separated and "dropout +6." in separated
    assert advice == "mlp: use dropout here; BatchNorm alone does not replace it."


def test_when_the_reference_is_best_the_line_says_so_once():
    means = {"bn_before_act": 0.99, "bn_act_drop": 0.96}
    first = _answer(_rows(means, "resnet_small", 0.5), _arm(means, "resnet_small", 0.5))[1]
    assert first.startswith("resnet_small: best is the reference, bn_before_act 99.0") and first.count("bn_before") == 1


def test_a_difference_that_is_neither_separated_nor_level_is_called_not_separated_never_level():
    means = {"bn_before_act": 0.90, "bn_act_drop": 0.895}
    lines = _answer(_rows(means, "mlp", 0.2, noise=0.012), _arm(means, "mlp", 0.2))
    assert re.search(r"not separated: bn_act_drop -\d\.\d\.$", lines[1]), lines[1]
    assert "level" not in lines[1]
    assert lines[3] == "mlp: nothing is separated from the reference with 5 seeds; run more seeds."


def test_more_architectures_than_fit_are_left_to_the_report():
    rows = [row for arch in ("a1", "a2", "a3") for row in _rows(SHALLOW, arch, 0.2)]
    arms = [kerasreg.analysis.contrasts.Arm(arch, {arch: "bn_before_act"},
                                            {arch: [report.statistics.default_label(r) for r in rows
                                                    if r["architecture"] == arch and r["seed"] == 0]},
                                            tuple(range(SEEDS)), SEEDS, 0.01) for arch in ("a1", "a2", "a3")]
    lines = report.analyse(report.summarize(rows), rows, arms).answer
    assert len(lines) == 5 and lines[1].startswith("a1: ") and lines[-1] == "2 more architectures in the report."


def test_a_cut_line_counts_each_group_on_its_own():
    # Two level with the reference and one undecided, on an architecture name long enough to cut the line.
    means = {"bn_before_act": 0.990, "bn_act_drop": 0.989, "head_dropout": 0.9895, "drop_before_bn": 0.985}
    noise = {"drop_before_bn": 0.02}
    arch = "resnet_small"
    lines = _answer(_rows(means, arch, 0.5, noise=0.001, noise_by=noise), _arm(means, arch, 0.5))
    first, _, advice = lines[1:]
    assert len(first) <= answer.WIDTH and "level (within ±1.0 points): " in first and "not separated: " in first
    assert "+2 more" not in first, first
    assert advice == (f"{arch}: bn_act_drop, head_dropout are level with the reference; 1 contrast undecided with "
                      "5 seeds; run more seeds."), advice


def test_counts_that_do_not_fit_after_the_best_drop_it_and_stay_whole():
    # The digits study's case: the best is not the reference, and its counts do not fit after the best's name.
    means = {"bn_before_act": 0.9944, "head_dropout": 0.9949, "bn_act_drop": 0.9915, "drop_before_bn": 0.9934}
    noise = {"bn_act_drop": 0.02, "drop_before_bn": 0.02}
    arch = "resnet_small"
    first = _answer(_rows(means, arch, 0.5, noise=0.001, noise_by=noise), _arm(means, arch, 0.5))[1]
    assert first == f"{arch}: against bn_before_act 99.44% (5 seeds): level (within ±1.0 points): 1; not separated: 2.", \
        first
