"""The study's answer in a few short lines: where Dropout and BatchNorm should go, per architecture.

Read from the report's Holm family (per architecture, the best configuration
against every other one, paired by seed; `report.paired_family`): what
costs test accuracy beyond seed noise and by how much, what is level with
the best, and what to do. The rule of what to do follows the placements'
structure: dropout that feeds a normalisation layer in every block shifts
the variance BatchNorm learns (Li et al., "Understanding the Disharmony
between Dropout and Batch Normalization by Variance Shift", CVPR 2019);
dropout after the last BatchNorm, or variance-stable Uout, does not.
"""

import math

from kerasreg._text import plural
from kerasreg.analysis import statistics
from kerasreg.models import get_placement
from kerasreg.models.placements import trains_with_dropout

WIDTH = 119
MAX_LINES = 8  # including the report's path, which the caller prints last
QUESTION = "Where should Dropout and BatchNorm go?"


def dropout_feeds_norm(config):
    """True when dropout (not variance-stable Uout) sits inside every block of a normalised net.

    Example:

    >>> dropout_feeds_norm({"placement": "bn_act_drop", "dropout": "standard", "dropout_rate": 0.5})
    True
    >>> dropout_feeds_norm({"placement": "head_dropout", "dropout": "standard", "dropout_rate": 0.5})
    False
    """
    placement = _placement(config)
    return (trains_with_dropout(config) and placement.uses_norm and "drop" in placement.block
            and "uout" not in (config.get("dropout"), placement.dropout_kind))


def _placement(config):
    return get_placement(config["placement"])


def _points(value):
    return f"{100 * value:+.1f}" if math.isfinite(value) else "n/a"


def _fit(head, items, tail=""):
    """`head` + as many comma-separated `items` as fit in `WIDTH`, then `+N more`."""
    for shown in range(len(items), 0, -1):
        rest = len(items) - shown
        text = head + ", ".join(items[:shown]) + (f", +{rest} more" if rest else "") + tail
        if len(text) <= WIDTH or shown == 1:
            return text[:WIDTH]
    return (head + tail)[:WIDTH]


def _names(members):
    """Comparison label -> the shortest unambiguous name within one architecture (the placement, where unique)."""
    placements = [s.config["placement"] for s in members]
    return {statistics.default_label(s.config): (s.config["placement"] if placements.count(s.config["placement"]) == 1
                      else statistics.default_label(s.config)) for s in members}


def _advice(best, behind, configs, n_seeds):
    costly = [configs[c.other] for c in behind]
    parts = []
    if any(dropout_feeds_norm(c) for c in costly) and not dropout_feeds_norm(best.config):
        parts.append("keep dropout off BatchNorm's input (dropout after the last BN, or uout)")
    if any(not trains_with_dropout(c) for c in costly) and trains_with_dropout(best.config):
        parts.append("use dropout; where it sits matters less than having it")
    if parts:
        return "; ".join(parts) + "."
    if behind:
        return "use the best or a placement level with it."
    return f"no placement is separated from the best with {plural(n_seeds, 'seed')}; run more seeds."


def _architecture_lines(arch, best, members, comparisons):
    names = _names(members)
    configs = {statistics.default_label(s.config): s.config for s in members}
    n_seeds = best.stat("test_accuracy")[2]
    behind = sorted((c for c in comparisons if c.distinguishable and c.mean_difference > 0),
                    key=lambda c: -c.mean_difference)
    level = [c for c in comparisons if not c.distinguishable and c.n_pairs >= 2]
    first = f"{arch}: best {names[statistics.default_label(best.config)]} {best.stat('test_accuracy')[0]:.2%}"
    first = _fit(first + "; level with it: ", [names[c.other] for c in level], ".") if level else first + "."
    if behind:
        costs = _fit(f"{arch}: worse beyond noise, points (95% CI): ",
                     [f"{names[c.other]} {_points(-c.mean_difference)} ({_points(-c.ci_high)}, "
                      f"{_points(-c.ci_low)})" for c in behind], ".")
    else:
        costs = f"{arch}: nothing measured is behind the best beyond seed noise ({plural(n_seeds, 'seed')})."
    return [first, costs, f"{arch}: {_advice(best, behind, configs, n_seeds)}"]


def answer(bests, members_by_architecture, family, *, dataset=""):
    """At most `MAX_LINES - 1` lines of at most `WIDTH` characters answering the study's question.

    Args:
        bests: dict architecture -> its best `ConfigSummary`.
        members_by_architecture: dict architecture -> its `ConfigSummary` list.
        family: the report's Holm-corrected `PairedComparison`s (best vs every other).
        dataset: str. Named in the first line. Defaults to `""`.

    Example:

    >>> answer({}, {}, [])
    ['Where should Dropout and BatchNorm go? No completed runs to answer it.']
    """
    if not bests:
        return [f"{QUESTION} No completed runs to answer it."]
    seeds = max(best.stat("test_accuracy")[2] for best in bests.values())
    on = f" {dataset}," if dataset else ""
    lines = [f"{QUESTION}{on} {plural(seeds, 'seed')}, paired by seed, Holm-corrected:"]
    room = MAX_LINES - 2  # the question above, the report's path below
    shown = list(bests.items())
    if 3 * len(shown) > room:
        shown = shown[:(room - 1) // 3]  # one line left to say what is not shown
    for arch, best in shown:
        comparisons = [c for c in family if c.group == str(arch) and c.metric == "test_accuracy"]
        lines += _architecture_lines(arch, best, members_by_architecture[arch], comparisons)
    if len(shown) < len(bests):
        lines.append(f"{plural(len(bests) - len(shown), 'more architecture')} in the report.")
    return lines
