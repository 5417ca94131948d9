"""The answer's statistics proved by simulation: thousands of synthetic studies with known effects, decided by
the same code as a real study (the quick study's deep arm: 3 contrasts, 5 seeds, up to 10).

Each scenario prints its family-wise error rate with a 99% Clopper-Pearson interval and its power.
"""

import numpy as np
from scipy import stats

import kerasreg
from kerasreg.analysis import contrasts

STUDIES = 1500
ALPHA = 0.05
SPREAD = 0.008  # per-seed noise of one configuration's test accuracy (the deep arm's measured ~0.5-0.9 points)


def _deep_arm():
    (_, deep) = kerasreg.StudyConfig.preset("quick").contrast_arms()
    return deep


def _study(arm, effects, rng, spread=SPREAD):
    """Rows of one synthetic study: every configuration on every seed it could get (up to max_seeds)."""
    (arch,) = arm.labels
    seeds = list(arm.seeds) + list(arm.added_seeds)
    seed_effect = rng.normal(0, 0.01, size=len(seeds))  # shared by the configurations of a seed
    rows = []
    for label in arm.labels[arch]:
        noise = rng.normal(0, spread, size=len(seeds))
        for i, seed in enumerate(seeds):
            placement, *rest = label.split(" / ")
            dropout, rate = rest[0].split() if rest else ("standard", "0")
            rows.append({"architecture": arch, "placement": placement, "dropout": dropout,
                         "dropout_rate": float(rate), "norm": "batch", "seed": seed,
                         "test_accuracy": 0.97 + effects.get(placement, 0.0) + seed_effect[i] + noise[i]})
    return rows


def _wrong(c, truth, margin):
    """A claim the true difference contradicts: separated the wrong way or from nothing, or level when it is not."""
    if c.decision == "separated":
        return truth == 0 or (c.mean_difference > 0) != (truth > 0)
    return c.decision == "level" and abs(truth) >= margin


def _simulate(effects, seed, spread=SPREAD):
    arm = _deep_arm()
    rng = np.random.default_rng(seed)
    wrong_studies, decisions, added = 0, [], 0
    for _ in range(STUDIES):
        decided = contrasts.decide_arm(arm, _study(arm, effects, rng, spread))
        wrong = False
        for d in decided:
            c = d.comparison
            placement = c.other.split(" / ")[0]
            # The interval makes the decision, in every study.
            assert (c.decision == "separated") == (c.ci_low > 0 or c.ci_high < 0)
            assert (c.decision == "level") == (not (c.ci_low > 0 or c.ci_high < 0)
                                               and -arm.margin < c.ci_low and c.ci_high < arm.margin)
            assert c.n_pairs == (arm.max_seeds if d.extended else len(arm.seeds))
            assert c.confidence == 1 - ALPHA / arm.intervals
            wrong |= _wrong(c, effects.get(placement, 0.0), arm.margin)
            decisions.append((placement, c.decision))
        wrong_studies += wrong
        added += sum(d.extended for d in decided)
    low, high = stats.binomtest(wrong_studies, STUDIES).proportion_ci(0.99, method="exact")
    return wrong_studies / STUDIES, (low, high), decisions, added / STUDIES


def _rate(decisions, placement, decision):
    picked = [d for p, d in decisions if p == placement]
    return sum(d == decision for d in picked) / len(picked)


def test_with_no_effect_anywhere_the_family_wise_error_rate_is_at_most_alpha():
    rate, (low, high), decisions, added = _simulate({}, seed=1)
    print(f"\nall null: family-wise error {rate:.2%} (99% CI {low:.2%} to {high:.2%}); "
          f"level: {_rate(decisions, 'head_dropout', 'level'):.0%} of contrasts; contrasts extended per study: {added:.2f}")
    assert high < ALPHA


def test_one_true_two_point_effect_is_found_without_raising_the_error_rate():
    rate, (low, high), decisions, added = _simulate({"bn_act_drop": -0.02}, seed=2)
    power = _rate(decisions, "bn_act_drop", "separated")
    print(f"\none -2-point effect: family-wise error {rate:.2%} (99% CI {low:.2%} to {high:.2%}); "
          f"power {power:.1%}; contrasts extended per study: {added:.2f}")
    assert high < ALPHA
    assert power > 0.8


def test_level_is_claimed_for_true_equivalence_and_a_difference_at_the_margin_is_rarely_level():
    effects = {"bn_act_drop": 0.01, "drop_before_bn": -0.01}  # exactly at the 1-point margin: level is wrong
    rate, (low, high), decisions, added = _simulate(effects, seed=3, spread=0.003)
    power = _rate(decisions, "head_dropout", "level")
    print(f"\ntrue equivalence (spread 0.3%) beside two differences at the margin: family-wise error "
          f"{rate:.2%} (99% CI {low:.2%} to {high:.2%}); level found for a true 0: {power:.1%}")
    assert high < ALPHA
    assert _rate(decisions, "bn_act_drop", "level") < ALPHA and _rate(decisions, "drop_before_bn", "level") < ALPHA
    assert power > 0.8
