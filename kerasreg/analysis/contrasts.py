"""The study's contrasts, fixed before any run, and its seeds until decided.

Each arm of a study names a reference configuration per architecture
(BatchNorm alone, `bn_before_act`, unless the study file says otherwise);
its family is that reference against every other configuration of the arm,
paired by seed, with intervals at the Bonferroni level (`statistics`).

Seeds until decided: with `max_seeds` above the planned seeds, the data are
looked at twice and `alpha` is spent in halves, `alpha / 2` at each look.
After the planned seeds (look 1) every contrast is decided or not; each one
still undecided whose observed difference and spread would decide it within
`max_seeds` (its `seeds_needed`) gets both of its configurations trained up
to `max_seeds` seeds, always that many, and is decided again on all of them
(look 2). Every interval of an arm is at `1 - alpha / (looks x contrasts)`,
so by Bonferroni's inequality the chance that any claim of the arm is wrong
stays at most `alpha`, whichever contrasts the first look extends.

Example:

>>> arm = Arm("deep", {"resnet": "bn_before_act"}, {"resnet": ["bn_before_act", "uout"]}, (0, 1, 2), 5, 0.01)
>>> arm.looks, arm.intervals, arm.added_seeds
(2, 2, (3, 4))
"""

from __future__ import annotations

import dataclasses

from kerasreg._text import plural
from kerasreg.analysis import statistics

METRIC = "test_accuracy"


@dataclasses.dataclass(frozen=True)
class Arm:
    """What one arm fixes before any run: its contrasts, its seeds and its equivalence margin.

    Fields:
        name: str. The arm's name.
        references: dict architecture -> the reference's label (`statistics.default_label`).
        labels: dict architecture -> labels of the arm's configurations, in grid order.
        seeds: tuple of int. The planned seeds.
        max_seeds: int. Seeds an undecided contrast may grow to (`len(seeds)`: never).
        margin: float. Equivalence margin in accuracy (0.01: one point).
        alpha: float. Family-wise error rate of the arm's claims. Defaults to `0.05`.
    """

    name: str
    references: dict
    labels: dict
    seeds: tuple
    max_seeds: int
    margin: float
    alpha: float = statistics.ALPHA

    @property
    def looks(self):
        """1, or 2 when undecided contrasts may get seeds added."""
        return 2 if self.max_seeds > len(self.seeds) else 1

    @property
    def contrasts(self):
        """`(architecture, reference, other)` of every contrast, in grid order."""
        return [(arch, self.references[arch], other) for arch, labels in self.labels.items()
                for other in labels if other != self.references[arch]]

    @property
    def intervals(self):
        """How many intervals share `alpha`: contrasts times looks."""
        return max(1, len(self.contrasts)) * self.looks

    @property
    def added_seeds(self):
        """The seeds an extended contrast gets: the next ones after the largest planned seed."""
        start = max(self.seeds) + 1
        return tuple(range(start, start + self.max_seeds - len(self.seeds)))


@dataclasses.dataclass(frozen=True)
class Decided:
    """A contrast's final comparison, at the look that decided it or last tested it.

    Fields:
        arm: str. The arm's name.
        comparison: `statistics.PairedComparison`.
        look: int. 1 (planned seeds) or 2 (seeds added).
        extended: bool. True when seeds were added for this contrast.
    """

    arm: str
    comparison: statistics.PairedComparison
    look: int
    extended: bool


def _per_seed(rows, arch, label, seeds):
    return {row["seed"]: float(row[METRIC]) for row in rows
            if row.get("architecture") == arch and statistics.default_label(row) == label
            and row.get("seed") in seeds and statistics._finite(row.get(METRIC))}


def _compare(arm, rows, arch, reference, other, seeds):
    return statistics.compare_pair((reference, _per_seed(rows, arch, reference, seeds)),
                                   (other, _per_seed(rows, arch, other, seeds)), metric=METRIC, group=str(arch),
                                   alpha=arm.alpha, intervals=arm.intervals, margin=arm.margin)


def first_look(arm, rows):
    """The arm's contrasts on the planned seeds; returns `[(architecture, comparison, extend)]`.

    `extend` is True for a contrast that is undecided and whose observed
    difference and spread would decide it within `max_seeds`.

    Example:

    >>> first_look(Arm("a", {"mlp": "x"}, {"mlp": ["x"]}, (0, 1), 2, 0.01), [])
    []
    """
    out = []
    for arch, reference, other in arm.contrasts:
        c = _compare(arm, rows, arch, reference, other, set(arm.seeds))
        extend = (arm.looks == 2 and c.decision == statistics.NOT_SEPARATED and c.seeds_needed is not None
                  and c.seeds_needed <= arm.max_seeds)
        out.append((arch, c, extend))
    return out


def seeds_to_add(arm, rows):
    """architecture -> {label: the seeds to add}: both configurations of every extended contrast.

    Example:

    >>> seeds_to_add(Arm("a", {"mlp": "x"}, {"mlp": ["x", "y"]}, (0, 1), 2, 0.01), [])
    {}
    """
    added = {}
    for arch, c, extend in first_look(arm, rows):
        if extend:
            for label in (c.reference, c.other):
                added.setdefault(arch, {})[label] = arm.added_seeds
    return added


def decide_arm(arm, rows):
    """Every contrast of the arm, decided at its last look.

    Example:

    >>> decide_arm(Arm("a", {"mlp": "x"}, {"mlp": ["x", "y"]}, (0, 1), 2, 0.01), [])[0].comparison.decision
    'not testable'
    """
    all_seeds = set(arm.seeds) | set(arm.added_seeds)
    out = []
    for arch, c, extend in first_look(arm, rows):
        if extend:
            c = _compare(arm, rows, arch, c.reference, c.other, all_seeds)
        out.append(Decided(arm.name, c, 2 if extend else 1, extend))
    return out


def family_text(arms):
    """The family and the decision rule, said before the results.

    Example:

    >>> family_text([Arm("deep", {"resnet": "bn_before_act"}, {"resnet": ["bn_before_act", "uout"]}, (0, 1), 4, 0.01)])
    'Contrasts fixed before any run, per arm: the reference against every other configuration, paired by seed. deep: resnet bn_before_act vs uout (1 contrast; 2 seeds, up to 4 for an undecided contrast: alpha 0.05 spent in two looks of 0.025; intervals at 97.5%). Decisions are read off the intervals: separated when an interval excludes 0, level when it lies inside ±1.0 points (two one-sided tests), else not separated.'
    """
    parts = []
    for arm in arms:
        pairs = "; ".join(f"{arch} {ref} vs {', '.join(o for o in arm.labels[arch] if o != ref)}"
                          for arch, ref in arm.references.items())
        seeds = (f"{plural(len(arm.seeds), 'seed')}, up to {arm.max_seeds} for an undecided contrast: alpha "
                 f"{arm.alpha:g} spent in two looks of {arm.alpha / 2:g}" if arm.looks == 2
                 else plural(len(arm.seeds), "seed"))
        confidence = 1 - arm.alpha / arm.intervals
        parts.append(f"{arm.name}: {pairs} ({plural(len(arm.contrasts), 'contrast')}; {seeds}; intervals at "
                     f"{statistics.level_text(confidence)})")
    margins = sorted({arm.margin for arm in arms})
    margin = " or ".join(statistics.format_difference(METRIC, m).lstrip("+") for m in margins)
    return ("Contrasts fixed before any run, per arm: the reference against every other configuration, paired "
            f"by seed. {'. '.join(parts)}. Decisions are read off the intervals: separated when an interval "
            f"excludes 0, level when it lies inside ±{margin} (two one-sided tests), else not separated.")


def seeds_text(arm, decided):
    """How many seeds each configuration got, and why.

    Example:

    >>> seeds_text(Arm("a", {"mlp": "x"}, {"mlp": ["x", "y"]}, (0, 1), 2, 0.01), [])
    'a: every configuration 2 seeds, as planned.'
    """
    extended = [d.comparison for d in decided if d.extended]
    left = [d.comparison for d in decided if arm.looks == 2 and not d.extended
            and d.comparison.decision == statistics.NOT_SEPARATED]
    if extended:
        why = "; ".join(f"{c.other} vs {c.reference} ({c.group})" for c in extended)
        text = (f"{arm.name}: {len(arm.seeds)} planned seeds; {plural(len(extended), 'contrast')} undecided after "
                f"them whose observed difference and spread would be decided within {arm.max_seeds} seeds got both "
                f"configurations trained to {arm.max_seeds} seeds: {why}.")
    else:
        text = f"{arm.name}: every configuration {plural(len(arm.seeds), 'seed')}, as planned."
    if left:
        text += (" Left undecided, since more than max_seeds would be needed at the spread observed: " + "; ".join(
            f"{c.other} vs {c.reference} ({c.group}, about {c.seeds_needed} seeds)" if c.seeds_needed
            else f"{c.other} vs {c.reference} ({c.group}, over 1,000 seeds)" for c in left) + ".")
    return text
