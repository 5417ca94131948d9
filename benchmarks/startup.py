"""How fast the `kerasreg` command answers: medians of fresh processes, and the ratio to `import tensorflow`.

`import kerasreg`, `kerasreg --help`, `--version` and `list` should take a
fraction of a second: they load no TensorFlow, TFDS, Keras or matplotlib.
`import tensorflow` alone is the reference they avoid.

Example:

    python benchmarks/startup.py --repeats 7
"""

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "import kerasreg": ["-c", "import kerasreg"],
    "kerasreg --help": ["-m", "kerasreg", "--help"],
    "kerasreg --version": ["-m", "kerasreg", "--version"],
    "kerasreg list": ["-m", "kerasreg", "list"],
    "import tensorflow (reference)": ["-c", "import tensorflow"],
}


def median_seconds(args, repeats):
    """Median wall time of `python <args>` in fresh processes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per case (default 5)")
    args = parser.parse_args(argv)
    medians = {name: median_seconds(case, args.repeats) for name, case in CASES.items()}
    reference = medians["import tensorflow (reference)"]
    print(f"{'case':<32} {'median (s)':>10} {'x import tensorflow':>20}")
    for name, seconds in medians.items():
        print(f"{name:<32} {seconds:>10.3f} {seconds / reference:>20.2f}")


if __name__ == "__main__":
    main()
