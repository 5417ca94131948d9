"""The published quick study's answer: the one source of the study's figures quoted outside a study's report.

`quick_study.json`, beside this module, holds the `answer.json` that the
README's main job wrote (`kerasreg study`), the deep arm's reruns on other
seeds and on the TensorFlow backend, and the decisions all three agree on.
`python benchmarks/answer_replication.py --publish` writes it; `diagnose`'s
verdict quotes it, and the README and the docs quote the same numbers.

Example:

>>> agreed_contrast("bn_act_drop")["decision"]  # doctest: +SKIP
'separated'
"""

import functools
import json
import pathlib

from kerasreg._files import write_atomic

PATH = pathlib.Path(__file__).with_name("quick_study.json")


@functools.cache
def load():
    """The published summary as a dict (`{}` when none is shipped).

    Example:

    >>> sorted(load())  # doctest: +SKIP
    ['agreed', 'main', 'replications']
    """
    return json.loads(PATH.read_text()) if PATH.exists() else {}


def agreed_contrast(placement, arm="deep"):
    """The main run's contrast of `placement` against the arm's reference, if every replication agrees; else None.

    Example:

    >>> agreed_contrast("no such placement") is None
    True
    """
    summary = load()
    label = next((other for other in summary.get("agreed", {}).get(arm, {}) if other.split(" / ")[0] == placement),
                 None)
    if label is None:
        return None
    (main,) = [a for a in summary["main"]["arms"] if a["name"] == arm]
    return next(c for c in main["contrasts"] if c["other"] == label)


def replication_table(arms):
    """contrast (the other configuration) -> {run name: its contrast dict}, from each run's deep-arm summary.

    Example:

    >>> replication_table({"main run": {"contrasts": [{"other": "x", "decision": "level"}]}})
    {'x': {'main run': {'other': 'x', 'decision': 'level'}}}
    """
    table = {}
    for name, arm in arms.items():
        for contrast in arm["contrasts"]:
            table.setdefault(contrast["other"], {})[name] = contrast
    return table


def agreed(table):
    """other -> decision, for the contrasts that every run measured and decided alike.

    Example:

    >>> agreed({"x": {"a": {"decision": "level"}, "b": {"decision": "level"}}, "y": {"a": {"decision": "level"}}})
    {'x': 'level'}
    """
    names = {name for runs in table.values() for name in runs}
    return {other: next(iter(runs.values()))["decision"] for other, runs in table.items()
            if set(runs) == names and len({c["decision"] for c in runs.values()}) == 1}


def markdown_table(table, names):
    """The replication table in Markdown: one row per contrast, one column per run.

    Example:

    >>> markdown_table({}, ["main run"])
    ['| deep arm, vs reference | main run |', '|---|---|']
    """
    lines = [f"| deep arm, vs reference | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]
    for other, runs in table.items():
        cells = []
        for name in names:
            c = runs.get(name)
            if c is None:
                cells.append("n/a")
                continue
            low, high = c["interval_points"]
            cells.append(f"{c['decision']}: {c['difference_points']:+.1f} ({low:+.1f}, {high:+.1f}), "
                         f"{c['seeds']} seeds")
        lines.append(f"| {other} vs {next(iter(runs.values()))['reference']} | {' | '.join(cells)} |")
    return lines


def write(main, replications, path=PATH):
    """Write the published summary: the main study's answer, the replications' deep arms, what all agree on.

    Example:

    >>> write(json.load(open("studies/quick/answer.json")), {})  # doctest: +SKIP
    """
    (deep,) = [a for a in main["arms"] if a["name"] == "deep"]
    table = replication_table({"main run": deep, **replications})
    summary = {"main": main, "replications": replications, "agreed": {"deep": agreed(table)}}
    write_atomic(path, json.dumps(summary, indent=2) + "\n")
    load.cache_clear()
    return path
