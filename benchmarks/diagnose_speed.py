"""What `kerasreg.diagnose` costs beside one `model.evaluate` over the same images.

MobileNetV2 (`weights=None`, 96x96x3, 10 classes, a dropout fed into a BN
head added so that every measurement runs) on 2,000 random images: 1,600 as
the train split, 400 as validation. `model.evaluate` runs over all 2,000
images at batch 32; `diagnose` reads the graph and measures the clean and
reported gaps (on 400 train images), the variance shift of all 53 BN layers,
validation accuracy before and after BN re-estimation (on the 1,600 train
images), and the gap between what `fit` reports and what `evaluate` gives
taken apart (one epoch of `fit` on a copy, then the final weights in
training mode, with dropout off, and in inference mode, over 400 train
images), and audits every BatchNorm with the train split (moving against
precise statistics, training-mode accuracy at batch sizes 8 and 32 on the
reported gap's 400 images). Each call's time is printed split into the gap
parts, the audit and the rest. The two alternate (evaluate, diagnose,
evaluate, diagnose, ...) in one process, `--repeat` times each, so load
from other work on the machine falls on both alike. diagnose compiles
through an empty compilation cache made for the run: its first call
compiles everything, the later ones load from the cache, as a second
`kerasreg diagnose` of the model would; `evaluate`'s first call compiles,
its later ones reuse the compiled function. The later calls are summarised
by their median. Times are wall-clock seconds and this process's CPU
seconds (the fairer ratio on a machine shared with other work). Target:
diagnose within 5x of evaluate; measured on an idle machine with the
defaults, the audit with data included: 4.6x the CPU (4.1x wall), median of
calls 2-3; 5.1x the CPU (4.5x wall) on the first call.

Runs on kerasreg's backend (JAX unless `KERAS_BACKEND` says otherwise).

Run: python benchmarks/diagnose_speed.py [--images 2000] [--size 96] [--repeat 3]
"""

import argparse
import os
import statistics
import tempfile
import time

import kerasreg  # first, so Keras starts on kerasreg's backend

import keras
import numpy as np

from kerasreg.diagnosis import result as diagnose_module


def _model(size):
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None, include_top=False)
    x = keras.Input((size, size, 3))
    h = keras.layers.GlobalAveragePooling2D()(backbone(x))
    h = keras.layers.BatchNormalization(name="head_bn")(keras.layers.Dropout(0.3, name="feature_drop")(h))
    model = keras.Model(x, keras.layers.Dense(10, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _timing(name, times):
    """`diagnose`'s step `name` (a function `result.py` calls), with the time of each call appended to `times`."""
    step = getattr(diagnose_module, name)

    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        value = step(*args, **kwargs)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
        return value

    setattr(diagnose_module, name, timed)


def _line(label, e, d, g, a):
    rest = [d[k] - g[k] - a[k] for k in (0, 1)]
    return "\n".join(
        f"{label if k == 1 else '':<22} {kind}: evaluate {e[k]:6.1f} s, diagnose {d[k]:6.1f} s = gap parts "
        f"{g[k]:5.1f} ({g[k] / d[k]:3.0%}) + audit {a[k]:5.1f} ({a[k] / d[k]:3.0%}) + the rest {rest[k]:5.1f} "
        f"({rest[k] / d[k]:3.0%}), ratio {d[k] / e[k]:4.1f}x (target 5x)" for k, kind in ((1, "CPU "), (0, "wall")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.images, args.size, args.size, 3), dtype=np.float32)
    y = rng.integers(0, 10, args.images).astype("int32")
    split = args.images * 4 // 5
    data = ((x[:split], y[:split]), (x[split:], y[split:]))
    model = _model(args.size)
    # An empty compilation cache: the first call compiles everything, the later ones rerun what a user's second
    # `kerasreg diagnose` of the model would.
    evaluate, diagnose, gap_parts, audit = [], [], [], []
    _timing("measure_gap_parts", gap_parts)
    _timing("audit_with_precise", audit)
    with tempfile.TemporaryDirectory(prefix="diagnose-speed-cache-") as cache:
        os.environ["KERASREG_CACHE_DIR"] = cache
        for _ in range(args.repeat):
            evaluate.append(_timed(lambda: model.evaluate(x, y, batch_size=32, verbose=0)))
            diagnose.append(_timed(lambda: kerasreg.diagnose(model, data)))
    print(f"MobileNetV2 {args.size}x{args.size}x3, {args.images} images ({split} train, {args.images - split} val), "
          f"backend {keras.backend.backend()}, {args.repeat} alternating calls each")
    print(_line("first call", evaluate[0], diagnose[0], gap_parts[0], audit[0]))
    for i, times in enumerate(zip(evaluate[1:], diagnose[1:], gap_parts[1:], audit[1:]), 2):
        print(_line(f"call {i}", *times))
    if args.repeat > 1:
        median = [tuple(statistics.median(t[k] for t in runs[1:]) for k in (0, 1))
                  for runs in (evaluate, diagnose, gap_parts, audit)]
        print(_line(f"median of calls 2-{args.repeat}", *median))


if __name__ == "__main__":
    main()
