"""Zoo fidelity: default `cnn1d` and `mlp` on MNIST-1D beside the MNIST-1D paper's numbers.

Greydanus, "Scaling down Deep Learning" (2020), reports test accuracy on
MNIST-1D of 32% for logistic regression, 68% for an MLP and 94% for a CNN.
This script trains kerasreg's default `mlp` and `cnn1d` (default placement
`bn_act_drop`, dropout 0.2, default widths/filters) with the documented
default recipe, the one `kerasreg train` uses with `--patience`: Adam 1e-3,
batch 100, up to `--epochs` epochs with early stopping on validation loss
(`--patience`, best epoch kept), and prints the median test accuracy over
seeds beside the paper's. Targets: cnn1d >= 0.95, mlp >= 0.66.

Run: python benchmarks/zoo_fidelity.py [--seeds 0 1 2] [--epochs 200] [--patience 15]
"""

import argparse
import json
import statistics
import tempfile
import time

import kerasreg

PAPER = {"mlp": 0.68, "cnn1d": 0.94}
TARGET = {"mlp": 0.66, "cnn1d": 0.95}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=15)
    args = parser.parse_args()
    print(f"{'model':8} {'params':>7} {'test acc (median)':>18} {'per seed':>24} {'paper':>6} {'target':>7}  epochs")
    with tempfile.TemporaryDirectory() as out:
        for model in ("mlp", "cnn1d"):
            accuracies, epochs, params = [], [], None
            start = time.perf_counter()
            for seed in args.seeds:
                config = kerasreg.RunConfig(model=model, epochs=args.epochs, patience=args.patience, seed=seed)
                manifest = json.loads((kerasreg.run(config, out=out, verbose=0) / "manifest.json").read_text())
                accuracies.append(manifest["metrics"]["test_accuracy"])
                epochs.append(manifest["metrics"]["best_epoch"])
                params = manifest["model"]["parameters"]
            median = statistics.median(accuracies)
            print(f"{model:8} {params:7d} {median:18.3f} {' '.join(f'{a:.3f}' for a in accuracies):>24} "
                  f"{PAPER[model]:6.2f} {TARGET[model]:7.2f}  best {epochs} "
                  f"({'meets' if median >= TARGET[model] else 'BELOW'} target; "
                  f"{time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
