"""The study's short answer: per architecture what costs accuracy, what is level, what to do, in 8 short lines."""

import re

import numpy as np

from kerasreg.analysis import report

# Per-seed test accuracy shaped like the quick study's finding: in the deep net dropout feeding BatchNorm
# costs points and dropout after the last BN does not; in the shallow net having dropout matters.
DEEP = {"uout": 0.986, "bn_before_act": 0.9855, "head_dropout": 0.985, "bn_act_drop": 0.960, "drop_before_bn": 0.955}
SHALLOW = {"ic": 0.676, "bn_act_drop": 0.6755, "dropout": 0.675, "none": 0.610, "bn_before_act": 0.615}
SEEDS = 5


def _rows(means, architecture, rate):
    noise = np.random.default_rng(0).normal(0, 0.002, size=(len(means), SEEDS))
    seed_effect = np.linspace(-0.01, 0.01, SEEDS)  # shared by all placements of a seed: what pairing removes
    return [{"architecture": architecture, "placement": placement, "dropout": "standard",
             "dropout_rate": rate if placement not in ("none", "bn_before_act") else 0.0, "norm": "batch",
             "seed": seed, "test_accuracy": float(mean + seed_effect[seed] + noise[i, seed]),
             "clean_gap": 0.05, "reported_gap": 0.04, "variance_shift_max": None, "train_time": 1.0}
            for i, (placement, mean) in enumerate(means.items()) for seed in range(SEEDS)]


def _answer(rows):
    return report.short_answer(report.summarize(rows), rows, dataset="mnist1d")


def test_the_answer_fits_eight_short_lines_with_the_report_path():
    lines = _answer(_rows(DEEP, "resnet_small", 0.5) + _rows(SHALLOW, "mlp", 0.2))
    assert len(lines) == 7, "the question, three lines per architecture; the report's path is the eighth"
    assert all(len(line) < 120 for line in lines), [line for line in lines if len(line) >= 120]
    assert lines[0] == "Where should Dropout and BatchNorm go? mnist1d, 5 seeds, paired by seed, Holm-corrected:"
    assert not any("(s)" in line for line in lines)


def test_deep_net_answer_names_the_costly_placements_with_points_and_the_remedy():
    deep = [line for line in _answer(_rows(DEEP, "resnet_small", 0.5)) if line.startswith("resnet_small")]
    best, costs, advice = deep
    assert best.startswith("resnet_small: best uout 98.6")
    assert "bn_before_act" in best and "head_dropout" in best, "level with the best, within seed noise"
    assert re.match(r"resnet_small: worse beyond noise, points \(95% CI\): drop_before_bn -3\.\d "
                    r"\(-\d\.\d, -\d\.\d\), bn_act_drop -2\.\d \(-\d\.\d, -\d\.\d\)\.$", costs), costs
    assert advice == ("resnet_small: keep dropout off BatchNorm's input (dropout after the last BN, or uout).")


def test_shallow_net_answer_says_dropout_matters_more_than_where_it_sits():
    lines = _answer(_rows(SHALLOW, "mlp", 0.2))
    best, costs, advice = lines[1:]
    assert best.startswith("mlp: best ic 67.6") and "bn_act_drop" in best and "dropout" in best
    assert "none -6." in costs and "bn_before_act -6." in costs
    assert advice == "mlp: use dropout; where it sits matters less than having it."


def test_an_answer_without_separations_says_to_run_more_seeds():
    rows = _rows({"none": 0.9, "bn_before_act": 0.9}, "mlp", 0.0)
    advice = _answer(rows)[-1]
    assert advice.startswith("mlp: no placement is separated from the best with 5 seeds; run more seeds")


def test_more_architectures_than_fit_are_left_to_the_report():
    rows = [row for arch in ("a1", "a2", "a3") for row in _rows(SHALLOW, arch, 0.2)]
    lines = _answer(rows)
    assert len(lines) == 5 and lines[1].startswith("a1: ") and lines[-1] == "2 more architectures in the report."


def test_the_takeaway_counts_in_plain_words():
    rows = _rows(DEEP, "resnet_small", 0.5)
    takeaway = report.headline(report.summarize(rows), rows)[-1]
    assert "2 other configurations are within seed noise of it; 2 are behind it beyond seed noise." in takeaway
