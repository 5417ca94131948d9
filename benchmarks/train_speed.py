"""kerasreg's training loop against a naive `model.fit` on the same model and data.

Trains the MLP 40-100-100-10 with `bn_act_drop`, rate 0.2, on mnist1d for
50 epochs at batch 100, with validation every epoch:
- naive: `model.fit(x, y, validation_data=(xv, yv))` with Keras defaults;
- kerasreg: `kerasreg.train` (cached pipeline, steps_per_execution, the
  OverfittingGap and VarianceShiftMonitor callbacks, deterministic ops);
- the same fast loop with fit's own validation and no gap callbacks, to show
  what measuring the gaps costs.
The naive runs go first, before kerasreg turns on deterministic ops (which
cannot be turned off in a process), so they run with Keras defaults.
Prints the times and ratios. Target: kerasreg at least 2x faster than naive.

Run: python benchmarks/train_speed.py [--epochs 50] [--repeats 3]
"""

import argparse
import statistics
import time

import kerasreg
from kerasreg import training


def build(dataset, deterministic=True):
    if deterministic:
        training.seed_everything(0)
    return kerasreg.build_model("mlp", placement="bn_act_drop", dropout_rate=0.2,
                                input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=0)


def naive(dataset, epochs):
    model = build(dataset, deterministic=False)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    (x, y), (xv, yv) = dataset.as_numpy("train"), dataset.as_numpy("val")
    start = time.perf_counter()
    model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=100, verbose=0)
    return time.perf_counter() - start


def with_kerasreg(dataset, epochs):
    model = build(dataset)
    start = time.perf_counter()
    training.train(model, dataset, epochs=epochs, batch_size=100, verbose=0)
    return time.perf_counter() - start


def same_loop_without_gaps(dataset, epochs):
    """kerasreg's pipeline and compile settings with fit's own validation, no gap callbacks."""
    model = build(dataset)
    steps = -(-len(dataset.as_numpy("train")[1]) // 100)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=steps)
    start = time.perf_counter()
    model.fit(dataset.pipeline("train", 100, shuffle=True, seed=0, initial_epoch=0),
              validation_data=dataset.pipeline("val", 1000), epochs=epochs, steps_per_epoch=steps, shuffle=False,
              verbose=0)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dataset = kerasreg.load_dataset("mnist1d")
    baseline = "fast loop, fit's validation, no gaps"
    times = {"naive model.fit": [naive(dataset, args.epochs) for _ in range(args.repeats)],
             "kerasreg.train": [], baseline: []}
    for _ in range(args.repeats):
        times["kerasreg.train"].append(with_kerasreg(dataset, args.epochs))
        times[baseline].append(same_loop_without_gaps(dataset, args.epochs))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"mnist1d MLP 40-100-100-10, bn_act_drop 0.2, {args.epochs} epochs, batch 100, "
          f"median of {args.repeats}:")
    for name, value in medians.items():
        print(f"  {name:<38} {value:6.2f} s")
    speedup = medians["naive model.fit"] / medians["kerasreg.train"]
    overhead = medians["kerasreg.train"] / medians[baseline] - 1
    print(f"  speed-up of kerasreg.train over naive fit: {speedup:.2f}x (target >= 2x)")
    print(f"  kerasreg.train against the fast loop without gap measurement: {overhead:+.1%} "
          "(gaps, variance shift and validation share one compiled pass; target < 15%)")


if __name__ == "__main__":
    main()
