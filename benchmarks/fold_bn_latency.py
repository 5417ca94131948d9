"""Latency of a BatchNorm-folded SavedModel against the unfolded export.

`export_run(..., fold_bn=True)` writes `saved_model_folded/`, where every
BatchNormalization that directly follows a Dense/Conv is folded into that
layer's kernel and bias. This benchmark exports a few zoo models both ways
(with non-trivial BN statistics, so the fold does real work), loads both
SavedModels through `kerasreg.load`, and times the `serving_default`
signature on batches of 256 and 1: two warm-up calls, then `--repeats`
calls per model alternating folded and unfolded; the median is reported.

    KERAS_BACKEND=tensorflow python benchmarks/fold_bn_latency.py
"""

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerasreg  # noqa: E402
from kerasreg.analysis.compare import median_call_ms  # noqa: E402

MODELS = [
    ("mlp", "bn_before_act", {"widths": (100, 100)}),
    ("mlp", "bn_act_drop", {"widths": (512, 512, 512)}),
    ("cnn1d", "bn_act_drop", {"filters": (32, 64)}),
    ("resnet_small", "bn_before_act", {"filters": 32, "stages": 2}),
]


def randomize_batch_norm(model, rng):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2.0, n))
            layer.beta.assign(rng.normal(size=n))
            layer.moving_mean.assign(rng.normal(size=n))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n))


def label(arch, placement, options):
    sizes = "-".join(str(v) for value in options.values() for v in np.atleast_1d(value))
    return f"{arch}({sizes}) {placement}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, repeats {args.repeats}, "
          f"{os.cpu_count()} CPUs")
    header = f"{'model':<34} {'folds':>5} {'batch':>5} {'unfolded ms':>12} {'folded ms':>10} {'speed-up':>9} {'max diff':>9}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as out:
        for arch, placement, options in MODELS:
            model = kerasreg.build_model(arch, placement=placement, input_shape=(40,), num_classes=10,
                                         seed=0, **options)
            randomize_batch_norm(model, rng)
            export = kerasreg.load(kerasreg.export_run(model, out=out, fold_bn=True))
            folds = len(export.manifest["folded"]["pairs"])
            plain, folded = export.serving_signature(), export.serving_signature(folded=True)
            for size in (256, 1):
                batch = tf.constant(rng.normal(size=(size, 40)).astype("float32"))
                diff = float(np.max(np.abs(plain(inputs=batch)["output_0"] - folded(inputs=batch)["output_0"])))
                for fn in (plain, folded, plain, folded):
                    fn(inputs=batch)
                times = {"plain": [], "folded": []}
                for _ in range(5):  # alternate so drifting machine load hits both alike
                    times["plain"].append(median_call_ms(plain, batch, args.repeats // 5 or 1))
                    times["folded"].append(median_call_ms(folded, batch, args.repeats // 5 or 1))
                plain_ms, folded_ms = (statistics.median(times[k]) for k in ("plain", "folded"))
                print(f"{label(arch, placement, options):<34} {folds:>5} {size:>5} {plain_ms:>12.3f} {folded_ms:>10.3f} "
                      f"{plain_ms / folded_ms:>8.2f}x {diff:>9.1e}")


if __name__ == "__main__":
    main()
