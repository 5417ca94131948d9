"""Time `model.fit` with and without `OverfittingGap` on an MNIST-1D-sized MLP.

The callback re-evaluates a training subset at every epoch end, so its cost
is a fixed amount per epoch; it matters most for small, fast models. This
benchmark uses the worst realistic case in kerasreg: the MNIST-1D MLP
(40-100-100-10, BN + dropout, batch 100) on a cached tf.data pipeline with
`steps_per_execution`, where one epoch takes tens of milliseconds.

Each configuration is warmed up with one epoch (tracing of the train, test
and subset functions is excluded), then timed for `--epochs` epochs,
alternating configurations `--repeats` times; the median is reported,
along with the cost of the callback's epoch-end work timed on its own.

    KERAS_BACKEND=tensorflow python benchmarks/gap_overhead.py
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasreg.training import OverfittingGap  # noqa: E402

BATCH_SIZE = 100


def load_data():
    """MNIST-1D from kerasreg if available, else synthetic data of its shape."""
    try:
        from kerasreg import load_dataset

        dataset = load_dataset("mnist1d")
        splits = dataset.as_numpy("train"), dataset.as_numpy("val")
        print("data: kerasreg.load_dataset('mnist1d')")
        return splits
    except Exception:  # older kerasreg without datasets: the shapes are what matter
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4000, 40)).astype("float32")
        y = np.argmax(x @ rng.normal(size=(40, 10)) + rng.normal(size=(4000, 10)), axis=1)
        print("data: synthetic, 3600 train / 400 val, 40 features, 10 classes")
        return (x[:3600], y[:3600]), (x[3600:], y[3600:])


def build_model():
    layers = [keras.Input((40,))]
    for width in (100, 100):
        layers += [
            keras.layers.Dense(width),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dropout(0.2, seed=0),
        ]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=12,
    )
    return model


def pipeline(x, y, shuffle):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        ds = ds.shuffle(len(y), seed=0)
    return ds.batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val) = load_data()
    train, val = pipeline(x_train, y_train, True), pipeline(x_val, y_val, False)

    gap = OverfittingGap((x_train, y_train), validation_data=(x_val, y_val))
    configs = {"without": (build_model(), []), "with": (build_model(), [gap])}
    # shuffle=False: the dataset shuffles itself (fit would only warn).
    for model, callbacks in configs.values():
        model.fit(
            train, validation_data=val, epochs=1, callbacks=callbacks, shuffle=False, verbose=0
        )

    times = {name: [] for name in configs}
    for _ in range(args.repeats):
        for name, (model, callbacks) in configs.items():
            start = time.perf_counter()
            model.fit(
                train,
                validation_data=val,
                epochs=args.epochs,
                callbacks=callbacks,
                shuffle=False,
                verbose=0,
            )
            times[name].append(time.perf_counter() - start)

    without, with_gap = statistics.median(times["without"]), statistics.median(times["with"])
    print(f"subset size: {len(gap.subset[1])}, epochs: {args.epochs}, repeats: {args.repeats}")
    print(
        f"fit without OverfittingGap: {without:.3f} s ({1000 * without / args.epochs:.1f} ms/epoch)"
    )
    print(
        f"fit with OverfittingGap:    {with_gap:.3f} s ({1000 * with_gap / args.epochs:.1f} ms/epoch)"
    )
    print(f"overhead: {100 * (with_gap - without) / without:+.1f} %")

    # The difference of two fit times is noisy on a shared machine; the
    # callback's own per-epoch cost, timed in isolation, is the stable number.
    logs = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5}
    calls = 200
    start = time.perf_counter()
    for epoch in range(calls):
        gap.on_epoch_end(epoch, dict(logs))
    per_epoch = (time.perf_counter() - start) / calls
    print(
        f"OverfittingGap.on_epoch_end alone: {1000 * per_epoch:.2f} ms "
        f"= {100 * per_epoch * args.epochs / without:.1f} % of an epoch without it"
    )


if __name__ == "__main__":
    main()
