"""How fast `kerasreg data import` reads a source, and how much memory it holds, beside plain readers.

Builds two seeded sources in a temporary folder: a PNG folder of 28x28
grayscale digits (scikit-learn's 8x8 digits upscaled, with noise; MNIST's
layout, `train/<class>/` and `test/<class>/`, 6 to 1) and a CSV of 40 float
features and a label. Each reader then runs in a fresh process, which
reports the seconds its work took (imports excluded) and its peak RSS:

- images: `kerasreg.import_dataset`, `tfds.folder_dataset.ImageFolder`
  (every image decoded once), `keras.utils.image_dataset_from_directory`;
- CSV: `kerasreg.import_dataset`, `numpy.loadtxt`, `pandas.read_csv`.

Rows per second is rows / seconds of work. Peak RSS is the whole process
(Python, TensorFlow and the libraries included; TensorFlow is imported
before the clock starts wherever the reader needs it); "idle RSS" is the
same process with every import done and no work, so peak minus idle is what the
work itself held. The stored size is the prepared TFDS folder. Targets
(issue 22): within 1.5x of the fastest reader; peak RSS below twice the
stored size.

`--against PATH` measures the import of another kerasreg checkout (`PATH/kerasreg`) in the same rounds,
beside this one: an A/B of a change to the import under the same load.

Example:

    python benchmarks/import_speed.py                      # 60,000 images, 1,000,000 rows
    python benchmarks/import_speed.py --images 6000 --rows 100000 --repeat 3
    python benchmarks/import_speed.py --only csv --repeat 3 --against /tmp/kerasreg-before
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

OURS = "kerasreg data import"
READERS = {
    "images": {
        "kerasreg data import": (
            "import tensorflow, kerasreg, kerasreg.data.importing",
            "n = sum(kerasreg.import_dataset('bench_images', SOURCE, data_dir=OUT, progress=False).sizes.values())"),
        "tfds ImageFolder": (
            "import tensorflow, tensorflow_datasets as tfds",
            "builder = tfds.folder_dataset.ImageFolder(SOURCE)\n"
            "n = sum(1 for split in ('train', 'test') for _ in builder.as_dataset(split=split))"),
        "keras image_dataset_from_directory": (
            "import tensorflow, keras",
            "n = sum(int(x.shape[0]) for split in ('train', 'test') for x, _ in keras.utils.image_dataset_from_directory("
            "os.path.join(SOURCE, split), image_size=(28, 28), color_mode='grayscale', batch_size=512, "
            "shuffle=False, verbose=False))"),
    },
    "csv": {
        "kerasreg data import": (
            "import tensorflow, kerasreg, kerasreg.data.importing",
            "n = sum(kerasreg.import_dataset('bench_csv', SOURCE, data_dir=OUT, progress=False).sizes.values())"),
        "numpy.loadtxt": ("import numpy", "n = len(numpy.loadtxt(SOURCE, delimiter=',', skiprows=1))"),
        "pandas.read_csv": ("import pandas", "n = len(pandas.read_csv(SOURCE))"),
    },
}

CHILD = """
import os, resource, sys, time
SOURCE, OUT, WORK = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
{setup}
idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if WORK:
{work}
else:
    n = 0
seconds = time.perf_counter() - start
print({{"rows": n, "seconds": seconds, "idle_kb": idle,
       "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}})
"""


def make_images(root, count, seed=0):
    """`count` 28x28 grayscale PNGs: upscaled scikit-learn digits with seeded noise, split 6:1 train/test."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from tqdm import tqdm

    digits = load_digits()
    rng = np.random.default_rng(seed)
    base = [Image.fromarray((image * 16).astype(np.uint8)).resize((28, 28), Image.BILINEAR) for image in digits.images]
    for i in tqdm(range(count), desc="writing PNGs", unit=" images", file=sys.stderr):
        pick = rng.integers(len(base))
        pixels = np.asarray(base[pick], np.int16) + rng.integers(-20, 21, (28, 28))
        folder = os.path.join(root, "test" if i % 7 == 6 else "train", str(digits.target[pick]))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L").save(os.path.join(folder, f"{i}.png"))


def make_csv(path, rows, features=40, seed=0, chunk=100_000):
    """A CSV of `rows` rows: `features` seeded float columns and an integer label in 0..9."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write(",".join([f"f{i}" for i in range(features)] + ["label"]) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, features)).round(5)
            y = rng.integers(0, 10, n)
            np.savetxt(f, np.column_stack([x, y]), delimiter=",", fmt=["%.5f"] * features + ["%d"])


def measure(setup, work, source, out, do_work=True, checkout=None):
    """Run one reader in a fresh process (importing kerasreg from `checkout` if given); return what it printed."""
    code = CHILD.format(setup="import os\n" + setup, work="    " + work.replace("\n", "\n    "))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if checkout is not None:
        env["PYTHONPATH"] = os.path.abspath(checkout)
    done = subprocess.run([sys.executable, "-c", code, source, out, "1" if do_work else "0"],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return eval(done.stdout.strip().splitlines()[-1])  # the child printed a dict literal


def folder_mb(path):
    """Size in MiB of a file, or of every file under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000, help="PNG images to build (default 60000)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows to build (default 1000000)")
    parser.add_argument("--only", choices=("images", "csv"), default=None, help="measure one source only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every reader in turn (A B C A B C ...); medians are printed (default 1)")
    parser.add_argument("--against", default=None, metavar="PATH",
                        help="another kerasreg checkout whose import is measured in the same rounds")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="kerasreg-import-bench-") as tmp:
        sources = {"images": os.path.join(tmp, "pngs"), "csv": os.path.join(tmp, "table.csv")}
        kinds = [args.only] if args.only else ["images", "csv"]
        if "images" in kinds:
            make_images(sources["images"], args.images)
        if "csv" in kinds:
            make_csv(sources["csv"], args.rows)
        for kind in kinds:
            out = os.path.join(tmp, f"data-{kind}")
            readers = {reader: (*code, None) for reader, code in READERS[kind].items()}
            if args.against:
                readers[f"{OURS} ({args.against})"] = (*READERS[kind][OURS], args.against)
            runs = {reader: [] for reader in readers}
            for _ in range(args.repeat):
                for reader, (setup, work, checkout) in readers.items():
                    shutil.rmtree(out, ignore_errors=True)
                    runs[reader].append(measure(setup, work, sources[kind], out, checkout=checkout))
                    if reader == OURS:
                        stored_mb = folder_mb(out)
            results[kind] = {reader: {"rows": rows[0]["rows"],
                                      "seconds": statistics.median(row["seconds"] for row in rows),
                                      "peak_kb": statistics.median(row["peak_kb"] for row in rows),
                                      "idle_kb": measure(*readers[reader][:2], sources[kind], out, do_work=False,
                                                         checkout=readers[reader][2])["peak_kb"],
                                      "all_seconds": [row["seconds"] for row in rows]}
                             for reader, rows in runs.items()}
            report(kind, results[kind], folder_mb(sources[kind]), stored_mb, args.repeat)
    print("\n" + json.dumps(results))


def report(kind, rows, source_mb, stored_mb, repeat):
    """Print each reader's rows/s, its time against the fastest other reader, and its peak RSS."""
    ours = OURS
    fastest = min((name for name in rows if not name.startswith(ours)), key=lambda name: rows[name]["seconds"])
    print(f"\n{kind}: {source_mb:.1f} MiB source, {stored_mb:.1f} MiB stored by the import"
          f"{f', median of {repeat} rounds' if repeat > 1 else ''}")
    print(f"{'reader':<36} {'rows':>9} {'s':>7} {'rows/s':>8} {'time/fastest':>13} {'peak RSS MiB':>13} "
          f"{'above idle':>11}")
    for name, row in rows.items():
        held = (row["peak_kb"] - row["idle_kb"]) / 1024
        print(f"{name:<36} {row['rows']:>9} {row['seconds']:>7.2f} {row['rows'] / row['seconds']:>8.0f} "
              f"{row['seconds'] / rows[fastest]['seconds']:>12.2f}x {row['peak_kb'] / 1024:>13.0f} {held:>11.0f}")
    held = (rows[ours]["peak_kb"] - rows[ours]["idle_kb"]) / 1024
    print(f"kerasreg import: {rows[ours]['seconds'] / rows[fastest]['seconds']:.2f}x the time of the fastest reader "
          f"({fastest}; target 1.5x); peak RSS {rows[ours]['peak_kb'] / 1024:.0f} MiB = "
          f"{rows[ours]['peak_kb'] / 1024 / stored_mb:.2f}x stored, {held:.0f} MiB above idle = "
          f"{held / stored_mb:.2f}x stored (target below 2x)", flush=True)


if __name__ == "__main__":
    main()
