"""The study's answer in a few short lines: where Dropout and BatchNorm should go, per architecture.

Read from each arm's fixed contrasts (`kerasreg.analysis.contrasts`): the
reference (BatchNorm alone unless the study file names another) against
every other configuration, paired by seed, each decision read off an
interval at the arm's Bonferroni level. A line names what is level with the
reference (inside the equivalence margin), what is separated from it and by
how much, what neither test decided, and what to do. The rule of what to do
follows the placements' structure: dropout that feeds a normalisation layer
in every block shifts the variance BatchNorm learns (Li et al.,
"Understanding the Disharmony between Dropout and Batch Normalization by
Variance Shift", CVPR 2019); dropout after the last BatchNorm, or
variance-stable Uout, does not.
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
    placement = get_placement(config["placement"])
    return (trains_with_dropout(config) and placement.uses_norm and "drop" in placement.block
            and "uout" not in (config.get("dropout"), placement.dropout_kind))


def _points(value):
    return f"{100 * value:+.1f}" if math.isfinite(value) else "n/a"


def _fit(head, groups, tail="", *, short_head=None):
    """`head` + as many items of `groups` as fit in `WIDTH`, each group ending with `+N more` for what it leaves out.

    `groups` is a list of `(prefix, items)`: items are comma-separated within a
    group, groups by "; ", each led by its prefix. Every group's first item is
    kept before any group's second, so a cut line still names each group and
    counts its own hidden items; where not even one item fits, each group is
    its count, after `short_head` (if given) where `head` leaves no room.

    Example:

    >>> _fit("a: ", [("level: ", ["x", "y"]), ("open: ", ["z"])], ".")
    'a: level: x, y; open: z.'
    """
    order = sorted(((i, g) for g, (_, members) in enumerate(groups) for i in range(len(members))))
    for shown in range(len(order), 0, -1):
        kept = set(order[:shown])
        texts = []
        for g, (prefix, members) in enumerate(groups):
            visible = [item for i, item in enumerate(members) if (i, g) in kept]
            hidden = len(members) - len(visible)
            more = f"+{hidden} more" if hidden else ""
            texts.append(prefix + ", ".join(visible + ([more] if more else [])))
        text = head + "; ".join(texts) + tail
        if len(text) <= WIDTH:
            return text
    counts = "; ".join(f"{prefix}{len(members)}" for prefix, members in groups) + tail
    if short_head is not None and len(head + counts) > WIDTH:
        head = short_head
    return (head + counts)[:WIDTH]


def _names(members):
    """Comparison label -> the shortest unambiguous name within one architecture (the placement, where unique)."""
    placements = [s.config["placement"] for s in members]
    return {statistics.default_label(s.config): (s.config["placement"] if placements.count(s.config["placement"]) == 1
                      else statistics.default_label(s.config)) for s in members}


def _advice(reference, worse, better, decided, configs, names):
    parts = []
    if any(dropout_feeds_norm(configs[c.other]) for c in worse) and not dropout_feeds_norm(reference):
        # The alternatives this arm measured: dropout that does not feed BatchNorm and is not behind the reference.
        kept = [names[c.other] for c in decided if c not in worse and trains_with_dropout(configs[c.other])
                and not dropout_feeds_norm(configs[c.other])]
        behind = names[statistics.default_label(reference)]
        parts.append("keep dropout off BatchNorm's input" + (
            f"; {', '.join(kept)} {'is' if len(kept) == 1 else 'are'} not behind {behind} beyond noise" if kept
            else ""))
    if any(trains_with_dropout(configs[c.other]) for c in better) and not trains_with_dropout(reference):
        parts.append("use dropout here; BatchNorm alone does not replace it")
    if parts:
        return "; ".join(parts) + "."
    if worse or better:
        return "prefer the reference or a configuration level with it."
    seeds = max((c.n_pairs for c in decided), default=0)
    level = [names[c.other] for c in decided if c.level]
    if not level:
        return f"nothing is separated from the reference with {plural(seeds, 'seed')}; run more seeds."
    undecided = [c for c in decided if not c.level]
    said = f"{', '.join(level)} {'is' if len(level) == 1 else 'are'} level with the reference"
    if not undecided:
        return f"{said}: here the placement costs nothing measurable."
    seeds = plural(max(c.n_pairs for c in undecided), "seed")
    return f"{said}; {plural(len(undecided), 'contrast')} undecided with {seeds}; run more seeds."


def _architecture_lines(arch, members, decided):
    configs = {statistics.default_label(s.config): s.config for s in members}
    reference = decided[0].reference
    if reference not in configs:
        return [f"{arch}: the reference, {reference}, has no completed run: nothing to compare with."]
    margin = statistics.format_difference("test_accuracy", decided[0].margin).lstrip("+")
    decided = [c for c in decided if c.other in configs]  # a configuration whose every run failed is in the report
    if not decided:
        return [f"{arch}: only the reference, {reference}, completed: nothing to compare it with."]
    names = _names(members)
    summary = next(s for s in members if statistics.default_label(s.config) == reference)
    best = max(members, key=lambda s: s.stat("test_accuracy")[0])
    separated = sorted((c for c in decided if c.distinguishable), key=lambda c: c.mean_difference)
    level = [names[c.other] for c in decided if c.level]
    open_ = [f"{names[c.other]} {_points(c.mean_difference)}" for c in decided
             if c.decision == statistics.NOT_SEPARATED]
    mean, _, n = summary.stat("test_accuracy")
    against = f"{names[reference]} {mean:.2%} ({plural(n, 'seed')}): "
    if statistics.default_label(best.config) == reference:
        head = f"{arch}: best is the reference, {against}"
    else:
        head = (f"{arch}: best {names[statistics.default_label(best.config)]} {best.stat('test_accuracy')[0]:.2%}; "
                f"against {against}")
    untestable = [names[c.other] for c in decided if c.decision == statistics.NOT_TESTABLE]
    groups = [(f"level (within ±{margin}): ", level), ("not separated: ", open_), ("not testable: ", untestable)]
    shown = [g for g in groups if g[1]]
    first = (_fit(head, shown, ".", short_head=f"{arch}: against {against}") if shown
             else head + "everything is separated.")
    if separated:
        level_text = statistics.level_text(separated[0].confidence)
        second = _fit(f"{arch}: separated, points ({level_text} CI): ", [("", [
            f"{names[c.other]} {_points(c.mean_difference)} ({_points(c.ci_low)}, {_points(c.ci_high)})"
            for c in separated])], ".")
    else:
        seeds = max(c.n_pairs for c in decided)
        second = f"{arch}: nothing is separated from {names[reference]} beyond seed noise ({plural(seeds, 'seed')})."
    worse = [c for c in separated if c.mean_difference < 0]
    better = [c for c in separated if c.mean_difference > 0]
    return [first, second, f"{arch}: {_advice(configs[reference], worse, better, decided, configs, names)}"]


def answer(members_by_architecture, decided, *, dataset=""):
    """At most `MAX_LINES - 1` lines of at most `WIDTH` characters answering the study's question.

    Args:
        members_by_architecture: dict architecture -> its `ConfigSummary` list.
        decided: the test-accuracy `PairedComparison`s of the arms' fixed contrasts
            (`kerasreg.analysis.contrasts.decide_arm`).
        dataset: str. Named in the first line. Defaults to `""`.

    Example:

    >>> answer({}, [])
    ['Where should Dropout and BatchNorm go? No completed runs to answer it.']
    """
    by_arch = {}
    for c in decided:
        by_arch.setdefault(c.group, []).append(c)
    shown = [arch for arch in members_by_architecture if str(arch) in by_arch]
    if not shown:
        return [f"{QUESTION} No completed runs to answer it."]
    on = f" {dataset}," if dataset else ""
    lines = [f"{QUESTION}{on} vs a fixed reference, paired by seed, {statistics.ALPHA:.0%} family-wise error per "
             "arm:"]
    room = MAX_LINES - 2  # the question above, the report's path below
    listed = shown if 3 * len(shown) <= room else shown[:(room - 1) // 3]  # one line says what is not shown
    for arch in listed:
        lines += _architecture_lines(arch, members_by_architecture[arch], by_arch[str(arch)])
    if len(listed) < len(shown):
        lines.append(f"{plural(len(shown) - len(listed), 'more architecture')} in the report.")
    return lines
