"""Does the quick study's answer hold on other seeds and on another float path?

Reruns the quick study's deep arm twice, exactly as `kerasreg study` does
(its fixed contrasts against BatchNorm alone, seeds until decided up to 10):
(a) on a disjoint seed set (100-104, and 105-109 where seeds are added) and
(b) on the TensorFlow backend (seeds 0-4: the same splits and batch order,
another float path, as another CPU is). It prints each contrast's decision,
difference and interval side by side with the main run's, and which
decisions all three share: the answer may only claim those.

With `--publish` it also writes `kerasreg/analysis/quick_study.json`, the one
source of the study's figures that `diagnose` quotes (the main study's
`answer.json`, the replications' and what they agree on).

Each rerun is a study folder under `--out`, so a second call trains nothing.
About 4-6 minutes per rerun on 2 cores.

Run: python benchmarks/answer_replication.py [--main studies/quick] [--out studies/replication] [--workers 2]
         [--publish]
"""

import argparse
import dataclasses
import json
import pathlib

import kerasreg
from kerasreg.analysis import published

REPLICATIONS = {"other seeds": (list(range(100, 105)), None), "TensorFlow backend": (list(range(5)), "tensorflow")}


def deep_arm(seeds, backend):
    """The quick preset's deep arm alone, on `seeds` and `backend`."""
    quick = kerasreg.StudyConfig.preset("quick")
    (deep,) = [arm for arm in quick.arms if arm["name"] == "deep"]
    return dataclasses.replace(quick, arms=[{**deep, "seeds": seeds}], backend=backend)


def deep_summary(folder):
    answer = json.loads((pathlib.Path(folder) / "answer.json").read_text())
    (arm,) = [arm for arm in answer["arms"] if arm["name"] == "deep"]
    return answer, arm


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--main", default="studies/quick", help="the main study's folder (kerasreg study)")
    parser.add_argument("--out", default="studies/replication", help="folder of the reruns")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--publish", action="store_true", help="write kerasreg/analysis/quick_study.json")
    args = parser.parse_args()
    answer, main_arm = deep_summary(args.main)
    arms = {"main run": main_arm}
    for name, (seeds, backend) in REPLICATIONS.items():
        folder = pathlib.Path(args.out) / name.split()[0].lower()
        kerasreg.run_study(deep_arm(seeds, backend), folder, workers=args.workers)
        arms[name] = deep_summary(folder)[1]
    table = published.replication_table(arms)
    print("\n".join(published.markdown_table(table, list(arms))))
    agreed = published.agreed(table)
    print(f"\nAll three agree on {len(agreed)} of {len(table)} contrasts: "
          + ", ".join(f"{other} {decision}" for other, decision in agreed.items()) + ".")
    if args.publish:
        path = published.write(answer, {name: arm for name, arm in arms.items() if name != "main run"})
        print(f"Wrote {path}.")


if __name__ == "__main__":
    main()
