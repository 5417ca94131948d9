"""What the per-epoch checkpoint costs: one verified write against one epoch of training.

Trains the MLP 40-100-100-10 (`bn_act_drop`, rate 0.2) on mnist1d at batch 100
with a run directory, then times `checkpoint.write` (encode, sha256, write,
fsync, rename, directory fsync), the part of `checkpoint.write_behind` that
training waits for (reading the state; the file is written by a thread while
the next epoch trains) and `checkpoint.read_latest` (read, verify) of that
model. Prints medians and each write's share of a median epoch.

Run: python benchmarks/checkpoint_cost.py [--epochs 10] [--repeats 20]
"""

import argparse
import statistics
import tempfile
import time

import kerasreg
from kerasreg import training
from kerasreg.training import checkpoint


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    data = kerasreg.load_dataset("mnist1d")
    training.seed_everything(0)
    model = kerasreg.build_model("mlp", placement="bn_act_drop", dropout_rate=0.2,
                                 input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
    with tempfile.TemporaryDirectory() as run_dir:
        result = kerasreg.train(model, data, epochs=args.epochs, run_dir=run_dir, verbose=0)
        epoch = statistics.median(result.epoch_times[1:])  # the first epoch includes tracing
        writes, behind, reads = [], [], []
        for i in range(args.repeats):
            start = time.perf_counter()
            checkpoint.write(f"{run_dir}/bench", model, i + 1, checkpoint.SLOTS[i % 2])
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            pending = checkpoint.write_behind(f"{run_dir}/bench", model, i + 1, checkpoint.SLOTS[i % 2])
            behind.append(time.perf_counter() - start)
            pending.result()
            start = time.perf_counter()
            checkpoint.read_latest(f"{run_dir}/bench")
            reads.append(time.perf_counter() - start)
    write, behind, read = (statistics.median(times) for times in (writes, behind, reads))
    print(f"median epoch {epoch * 1e3:.1f} ms, checkpoint write {write * 1e3:.2f} ms "
          f"({write / epoch:.1%} of an epoch), of which training waits for {behind * 1e3:.2f} ms "
          f"({behind / epoch:.1%}) when written behind, verified read {read * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
