"""What `kerasreg.diagnose` costs beside one `model.evaluate` over the same images.

MobileNetV2 (`weights=None`, 96x96x3, 10 classes, a dropout fed into a BN
head added so that every measurement runs) on 2,000 random images: 1,600 as
the train split, 400 as validation. `model.evaluate` runs over all 2,000
images at batch 32; `diagnose` reads the graph and measures the clean and
reported gaps, the variance shift of all 53 BN layers, validation
accuracy before and after BN re-estimation, and the gap between what `fit`
reports and what `evaluate` gives taken apart (one epoch of `fit` on a copy,
then the final weights in training mode, with dropout off, and in inference
mode, over the 1,600 train images); the time of that last step is printed
on its own too. The two alternate (evaluate,
diagnose, evaluate, diagnose, ...) in one process, `--repeat` times each,
so load from other work on the machine falls on both alike. The first call
of each includes its compilation; the later ones are summarised by their
median. Times are wall-clock seconds and this process's CPU seconds (the
fairer ratio on a machine shared with other work). Target: diagnose within
5x of evaluate.

Runs on kerasreg's backend (JAX unless `KERAS_BACKEND` says otherwise).

Run: python benchmarks/diagnose_speed.py [--images 2000] [--size 96] [--repeat 3]
"""

import argparse
import statistics
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


def _timing_gap_parts(times):
    """`diagnose`'s gap-parts step, with the time of each call appended to `times`."""
    measure = diagnose_module.measure_gap_parts

    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        parts = measure(*args, **kwargs)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
        return parts

    return timed


def _line(label, e, d, g):
    return (f"{label:<22} wall: evaluate {e[0]:6.1f} s, diagnose {d[0]:6.1f} s (gap parts {g[0]:5.1f} s), "
            f"ratio {d[0] / e[0]:4.1f}x   CPU: evaluate {e[1]:6.1f} s, diagnose {d[1]:6.1f} s (gap parts "
            f"{g[1]:5.1f} s), ratio {d[1] / e[1]:4.1f}x   (target 5x)")


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
    evaluate, diagnose, gap_parts = [], [], []
    diagnose_module.measure_gap_parts = _timing_gap_parts(gap_parts)
    for _ in range(args.repeat):
        evaluate.append(_timed(lambda: model.evaluate(x, y, batch_size=32, verbose=0)))
        diagnose.append(_timed(lambda: kerasreg.diagnose(model, data)))
    print(f"MobileNetV2 {args.size}x{args.size}x3, {args.images} images ({split} train, {args.images - split} val), "
          f"backend {keras.backend.backend()}, {args.repeat} alternating calls each")
    print(_line("first call", evaluate[0], diagnose[0], gap_parts[0]))
    for i, times in enumerate(zip(evaluate[1:], diagnose[1:], gap_parts[1:]), 2):
        print(_line(f"call {i}", *times))
    if args.repeat > 1:
        median = [tuple(statistics.median(t[k] for t in runs[1:]) for k in (0, 1))
                  for runs in (evaluate, diagnose, gap_parts)]
        print(_line(f"median of calls 2-{args.repeat}", *median))


if __name__ == "__main__":
    main()
