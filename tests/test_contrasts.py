"""The study's contrasts are fixed by the study file before any run; seeds are added only where they can decide."""

import json

import numpy as np
import pytest

import kerasreg
from kerasreg.analysis import report

DEEP = ["bn_before_act", "bn_act_drop", "drop_before_bn", "head_dropout", "uout"]


def _deep(**fields):
    return kerasreg.StudyConfig(models=["resnet_small"], placements=DEEP, rates=[0.5], seeds=[0, 1, 2, 3, 4],
                                **fields)


def _rows(config, differences, spreads, seeds=range(10)):
    """Rows for every configuration of the config on `seeds`: reference ~0.97, others offset by `differences`."""
    rng = np.random.default_rng(0)
    rows = []
    for arm in config.arm_configs():
        for run in arm.runs():
            if run.seed != arm.seeds[0]:
                continue
            noise = rng.normal(0, spreads.get(run.placement, 0.0), size=10)  # the same draws for any `seeds`
            for seed in seeds:
                rows.append({"architecture": run.model, "placement": run.placement,
                             "dropout": run.dropout or "standard", "dropout_rate": run.dropout_rate,
                             "norm": run.norm, "seed": seed,
                             "test_accuracy": 0.97 + differences.get(run.placement, 0.0) + 0.003 * (-1) ** seed
                             + noise[seed]})
    return rows


def test_the_family_is_the_reference_against_every_other_configuration_fixed_by_the_study_file():
    (arm,) = _deep().contrast_arms()
    assert arm.references == {"resnet_small": "bn_before_act"}
    assert [other for _, _, other in arm.contrasts] == ["bn_act_drop / standard 0.5", "drop_before_bn / standard 0.5",
                                                        "head_dropout / standard 0.5", "uout / uout 0.5"]
    assert (arm.looks, arm.intervals, arm.margin) == (1, 4, 0.01)
    (arm,) = _deep(reference="uout", max_seeds=10, equivalence_margin=0.02).contrast_arms()
    assert arm.references == {"resnet_small": "uout / uout 0.5"}
    assert (arm.looks, arm.intervals, arm.added_seeds, arm.margin) == (2, 8, (5, 6, 7, 8, 9), 0.02)
    (arm,) = kerasreg.StudyConfig(placements=["dropout", "ic"], seeds=[0, 1]).contrast_arms()
    assert arm.references == {"mlp": "dropout / standard 0.2"}, "no bn_before_act: the first placement listed"
    (shallow, deep) = kerasreg.StudyConfig.preset("quick").contrast_arms()
    assert (shallow.max_seeds, deep.max_seeds, deep.margin) == (5, 10, 0.01)


def test_a_study_file_sets_reference_margin_and_max_seeds_per_arm(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('dataset = "mnist1d"\nequivalence_margin = 0.02\n'
                    '[[arms]]\nname = "a"\nplacements = ["none", "ic"]\nreference = "ic"\nseeds = [0, 1]\n'
                    'max_seeds = 4\n[[arms]]\nname = "b"\nplacements = ["bn_before_act", "dropout"]\nseeds = [0, 1]\n')
    config = kerasreg.StudyConfig.from_toml(path)
    a, b = config.contrast_arms()
    assert (a.references, a.max_seeds, a.margin) == ({"mlp": "ic / standard 0.2"}, 4, 0.02)
    assert (b.references, b.max_seeds, b.margin) == ({"mlp": "bn_before_act"}, 2, 0.02)


@pytest.mark.parametrize("fields, message", [
    ({"reference": "ic"}, r"Invalid value in study for field `reference`: .*one of bn_before_act, bn_act_drop"),
    ({"max_seeds": 3}, r"field `max_seeds`: max_seeds=3 is below the 5 planned seeds"),
    ({"equivalence_margin": 2}, r"field `equivalence_margin`: .*between 0 and 1.*Received: equivalence_margin=2"),
    ({"equivalence_margin": 0}, r"equivalence_margin=0"),
])
def test_bad_contrast_fields_are_refused_naming_the_field_and_the_choices(fields, message):
    with pytest.raises(ValueError, match=message):
        _deep(**fields).validate()


def test_seeds_are_added_only_to_undecided_contrasts_that_the_added_seeds_can_decide():
    config = _deep(max_seeds=10)
    rows = _rows(config, {"bn_act_drop": -0.03, "head_dropout": -0.006, "uout": -0.004},
                 {"bn_act_drop": 0.002, "drop_before_bn": 0.002, "head_dropout": 0.006, "uout": 0.03}, range(5))
    added = sorted(run.run_name() for run in config.added_runs(rows))
    # bn_act_drop is separated and drop_before_bn level after 5 seeds; head_dropout's -0.6 points with a small
    # spread would be decided by 10; uout's spread is too wide for 10 seeds.
    assert added == sorted(f"resnet_small-{name}-seed{seed}" for name in ("bn_before_act-nodrop",
                                                                       "head_dropout-standard0.5")
                           for seed in range(5, 10))
    assert _deep().added_runs(rows) == [], "without max_seeds nothing is added"


def test_an_extended_contrast_is_decided_on_all_its_seeds_and_the_others_on_the_planned_ones():
    config = _deep(max_seeds=10)
    rows = _rows(config, {"bn_act_drop": -0.03, "head_dropout": -0.006, "uout": -0.004},
                 {"bn_act_drop": 0.002, "drop_before_bn": 0.002, "head_dropout": 0.006, "uout": 0.03})
    analysis = report.analyse(report.summarize(rows), rows, config.contrast_arms())
    seeds = {d.comparison.other.split(" / ")[0]: (d.comparison.n_pairs, d.look, d.comparison.decision)
             for d in analysis.decided}
    assert seeds == {"bn_act_drop": (5, 1, "separated"), "drop_before_bn": (5, 1, "level"),
                     "head_dropout": (10, 2, "separated"), "uout": (5, 1, "not separated")}
    assert ("grid: 5 planned seeds; 1 contrast undecided after them whose observed difference and spread would "
            "be decided within 10 seeds got both configurations trained to 10 seeds: head_dropout / standard 0.5 "
            "vs bn_before_act (resnet_small). Left undecided, since more than max_seeds would be needed at the "
            "spread observed: uout / uout 0.5 vs bn_before_act (resnet_small, about ") in " ".join(analysis.headline)
    summary = report.answer_summary("mnist1d", config.contrast_arms(), analysis.decided)
    (arm,) = json.loads(json.dumps(summary))["arms"]
    head = next(c for c in arm["contrasts"] if c["other"].startswith("head_dropout"))
    assert (head["decision"], head["seeds"], head["look"]) == ("separated", 10, 2)
    assert head["interval_points"][1] < 0 and arm["equivalence_margin_points"] == 1.0


def test_a_study_trains_the_added_seeds_reports_them_and_a_rerun_trains_nothing(tmp_path, capfd):
    # Placement `dropout` at rate 0 trains the same network as `none`: every seed's difference is exactly 0, which
    # two seeds cannot show (the sign test needs 7 at alpha / 2), so the contrast is extended to max_seeds.
    config = kerasreg.StudyConfig(placements=["none", "dropout"], rates=[0.0], seeds=[0, 1], max_seeds=7, epochs=1,
                                  options={"widths": [8]})
    first = kerasreg.run_study(config, tmp_path, workers=1)
    err = capfd.readouterr().err
    assert "Seeds until decided: 10 runs added for contrasts still undecided after the planned seeds." in err
    assert "10 runs added for undecided contrasts." in err, "the study's timing line counts them"
    (decided,) = first.decided
    assert (decided.look, decided.extended, decided.comparison.n_pairs) == (2, True, 7)
    assert decided.comparison.decision == "level" and decided.comparison.ci_low == decided.comparison.ci_high == 0
    runs = sorted(p.parent.name for p in (tmp_path / "runs").glob("*/manifest.json"))
    assert runs == sorted(f"mlp-{p}-nodrop-seed{s}" for p in ("none", "dropout") for s in range(7))
    assert "got both configurations trained to 7 seeds: dropout vs none (mlp)" in (tmp_path / "report.md").read_text()
    again = kerasreg.run_study(config, tmp_path, workers=1, resume=True)
    err = capfd.readouterr().err
    assert "Training 0 runs on local (1 worker); skipping 4 already exported." in err
    assert "Training 0 runs on local (1 worker); skipping 10 already exported." in err
    assert again.decided == first.decided
