"""Training speed: `kerasreg.train` on JAX (cold and warm compilation cache) and TensorFlow, naive fit, PyTorch.

Every contender trains the MLP 40-100-100-10 with `bn_act_drop`, rate 0.2,
on mnist1d (3600 train / 400 validation rows) for 50 epochs at batch 100,
validating every epoch, in its own process (Keras has one backend per
process), alternated round by round:
- kerasreg.train, JAX, cold: an empty compilation cache directory;
- kerasreg.train, JAX, warm: the directory the cold run of the same round filled;
- kerasreg.train, TensorFlow (the 0.1 engine);
- naive Keras fit on TensorFlow: `model.fit(x, y, validation_data=...)` with Keras defaults;
- naive Keras fit on JAX, the same code;
- the PyTorch eager peer (`peer_pytorch.py`), when torch is importable, with torch's
  default threads (the ratios' reference) and with one thread.
Times are the wall time of the 50 epochs inside each process (imports and
data loading excluded). Prints medians, first-epoch and later-epoch times,
and ratios to PyTorch. Targets: kerasreg.train JAX warm <= 0.6x PyTorch,
cold <= 1.0x.

Run: python benchmarks/train_speed.py [--epochs 50] [--repeats 3]
"""

import argparse
import importlib.util
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def _worker(kind, epochs):
    """Runs in a subprocess: train once and print one JSON line of timings."""
    import kerasreg
    from kerasreg import training

    dataset = kerasreg.load_dataset("mnist1d")
    training.seed_everything(0)
    model = kerasreg.build_model("mlp", placement="bn_act_drop", dropout_rate=0.2,
                                 input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=0)
    if kind == "kerasreg":
        start = time.perf_counter()
        result = training.train(model, dataset, epochs=epochs, batch_size=100, verbose=0)
        total = time.perf_counter() - start
        times = result.epoch_times
    else:
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)

        times = []
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        (x, y), (xv, yv) = dataset.as_numpy("train"), dataset.as_numpy("val")
        start = time.perf_counter()
        model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=100, verbose=0, callbacks=[Timer()])
        total = time.perf_counter() - start
    print(json.dumps({"total": total, "first_epoch": times[0], "later_epoch": statistics.median(times[1:])}))


def _run(command, env):
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _keras_env(backend, cache):
    env = {**os.environ, "KERAS_BACKEND": backend, "KERASREG_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _data_file(folder):
    """The benchmark's data as .npz, for the PyTorch peer (which does not import kerasreg)."""
    import kerasreg

    dataset = kerasreg.load_dataset("mnist1d")
    (x, y), (xv, yv) = dataset.as_numpy("train"), dataset.as_numpy("val")
    path = folder / "mnist1d.npz"
    import numpy as np

    np.savez(path, x_train=x, y_train=y.astype("int64"), x_val=xv, y_val=yv.astype("int64"))
    return path, len(x), len(xv)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["kerasreg", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker, args.epochs)

    me = [sys.executable, str(pathlib.Path(__file__).resolve()), "--epochs", str(args.epochs)]
    has_torch = importlib.util.find_spec("torch") is not None
    results = {}
    with tempfile.TemporaryDirectory(prefix="kerasreg-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        data, n_train, n_val = _data_file(tmp)
        for round_ in range(args.repeats):
            cache = tmp / f"cache-{round_}"  # empty: the cold run fills it, the warm run reuses it
            contenders = [
                ("kerasreg.train  JAX, cold cache", me + ["--worker", "kerasreg"], _keras_env("jax", cache)),
                ("kerasreg.train  JAX, warm cache", me + ["--worker", "kerasreg"], _keras_env("jax", cache)),
                ("kerasreg.train  TensorFlow", me + ["--worker", "kerasreg"], _keras_env("tensorflow", cache)),
                ("naive fit  TensorFlow", me + ["--worker", "naive"], _keras_env("tensorflow", cache)),
                ("naive fit  JAX (warm cache)", me + ["--worker", "naive"], _keras_env("jax", cache)),
            ]
            if has_torch:
                peer = [sys.executable, str(HERE / "peer_pytorch.py"), str(data), "--epochs", str(args.epochs)]
                contenders.append(("PyTorch eager peer", peer, dict(os.environ)))
                # One thread: torch's per-op thread barriers suffer most when other work shares the cores.
                contenders.append(("PyTorch eager peer, 1 thread", peer + ["--threads", "1"], dict(os.environ)))
            for name, command, env in contenders:
                results.setdefault(name, []).append(_run(command, env))
                print(f"round {round_ + 1}/{args.repeats}: {name}: {results[name][-1]['total']:.2f} s",
                      file=sys.stderr, flush=True)

    print(f"mnist1d {n_train}/{n_val}, MLP 40-100-100-10 bn_act_drop 0.2, {args.epochs} epochs, batch 100, "
          f"validation every epoch; median of {args.repeats} alternated rounds, one process each:")
    print(f"  {'':34} {'total':>8} {'1st epoch':>10} {'later epochs':>13} {'x PyTorch':>10}")
    peer = statistics.median(r["total"] for r in results["PyTorch eager peer"]) if has_torch else None
    for name, runs in results.items():
        total = statistics.median(r["total"] for r in runs)
        first = statistics.median(r["first_epoch"] for r in runs)
        later = statistics.median(r["later_epoch"] for r in runs)
        ratio = f"{total / peer:9.2f}x" if peer else "         -"
        print(f"  {name:<34} {total:7.2f}s {first:9.3f}s {1000 * later:10.1f} ms {ratio}")
    if peer is None:
        print("  (torch is not importable: no PyTorch peer; `pip install torch` to add it)")
        return
    warm = statistics.median(r["total"] for r in results["kerasreg.train  JAX, warm cache"]) / peer
    cold = statistics.median(r["total"] for r in results["kerasreg.train  JAX, cold cache"]) / peer
    print(f"  kerasreg.train JAX warm / PyTorch: {warm:.2f}x (target <= 0.6x); "
          f"cold / PyTorch: {cold:.2f}x (target <= 1.0x)")


if __name__ == "__main__":
    main()
