"""Where a deep-arm epoch goes: epoch time of the quick study's `resnet_small` with and without each layer kind.

Builds the deep arm's model (`resnet_small`, 3 stages, rate 0.5, Adam 3e-3,
batch 100, mnist1d) once per variant in one process pinned to one core,
like a study worker, compiles it as `kerasreg.train` does (one step call
per epoch), and alternates bare `fit` epochs between the variants round by
round, so load on a shared machine falls on all of them alike. Prints each
variant's median and fastest epoch and its ratio to the first.

A variant is `placement[:policy]`:
- placement: any placement (`bn_before_act` is BatchNorm alone, `none` neither);
- policy: a Keras dtype policy, e.g. `mixed_bfloat16`.
Every variant trains inside kerasreg's JAX settings, so dropout masks are
Keras's own draw under the non-partitionable threefry.

The deep 2-D epoch: `--dataset digits` (8x8x1) or `--dataset mnist5k`
(28x28x1) with `--model resnet_cifar` (ResNet-20: strided 16-32-64 stages)
or `--model resnet_small` (3 unstrided stages of 32 filters, as on mnist1d).

Run: python benchmarks/deep_epoch.py [--rounds 8] [--epochs 2] [--core 0]
         [--variants bn_before_act,bn_act_drop,bn_act_drop:mixed_bfloat16]
         [--dataset mnist1d|digits|mnist5k] [--model resnet_small|resnet_cifar]
"""

import argparse
import contextlib
import os
import statistics
import sys
import time

DEFAULT = "bn_before_act,bn_act_drop,drop_before_bn,none,bn_before_act:mixed_bfloat16"
# The deep arm's architecture options: the quick study's resnet_small, or ResNet-20 with its defaults.
MODEL_OPTIONS = {"resnet_small": {"stages": 3}, "resnet_cifar": {}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=DEFAULT)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per variant and round")
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--dataset", default="mnist1d", help="a built-in dataset: mnist1d, digits or mnist5k")
    parser.add_argument("--model", default="resnet_small", choices=sorted(MODEL_OPTIONS))
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    import kerasreg
    from kerasreg import _backend, training

    if keras.backend.backend() != "jax":
        sys.exit("This benchmark measures the JAX backend (KERAS_BACKEND=jax).")
    data = kerasreg.load_dataset(args.dataset)
    x, y = data.as_numpy("train")
    steps = -(-len(x) // 100)

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    variants = []
    for spec in args.variants.split(","):
        placement, policy = (spec.split(":") + [""])[:2]
        policy = policy or "float32"
        with _backend.jax_settings():
            training.seed_everything(0)
            with _policy(keras, policy):
                model = kerasreg.build_model(args.model, placement=placement, dropout_rate=0.5,
                                             input_shape=data.input_shape, num_classes=data.num_classes, seed=0,
                                             **MODEL_OPTIONS[args.model])
            model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"],
                          steps_per_execution=steps)
            times = []
            model.fit(x, y, epochs=2, batch_size=100, verbose=0, callbacks=[Timer()])  # compiles
        variants.append((f"{placement} {policy}", model, []))
        print(f"compiled {variants[-1][0]}: first epochs {times[0]:.1f} s, {times[1]:.3f} s", file=sys.stderr)
    for round_ in range(args.rounds):
        for name, model, measured in variants:
            times = []
            with _backend.jax_settings():
                model.fit(x, y, epochs=args.epochs, batch_size=100, verbose=0, callbacks=[Timer()])
            measured.extend(times)
        print(f"round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
    print(f"{args.model} {MODEL_OPTIONS[args.model]}, rate 0.5, batch 100, {args.dataset} {data.input_shape} "
          f"{len(x)} rows, one core; median of "
          f"{args.rounds} alternated rounds x {args.epochs} epochs:")
    reference = statistics.median(variants[0][2])
    for name, _, measured in variants:
        median = statistics.median(measured)
        print(f"  {name:<46} {1000 * median:7.1f} ms/epoch (fastest {1000 * min(measured):6.1f})  "
              f"x{median / reference:.3f}")


@contextlib.contextmanager
def _policy(keras, name):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


if __name__ == "__main__":
    main()
