"""The PyTorch peer of `kerasreg.train`: the same model, data and schedule in a plain eager loop.

MLP 40-100-100-10 with BatchNorm + ReLU + Dropout 0.2 per hidden block
(`bn_act_drop`), Adam 1e-3, mnist1d 3600 train / 400 validation rows,
50 epochs at batch 100, shuffled every epoch, validated (eval mode, no
gradients) every epoch: what a PyTorch user would write instead.
torch is not a kerasreg dependency; `train_speed.py` runs this only when it
is importable. Prints one JSON line: total seconds, first epoch, later epochs.

Run: python benchmarks/peer_pytorch.py data.npz [--epochs 50] [--threads N]
(`data.npz` holds x_train, y_train, x_val, y_val; train_speed.py writes it.)
"""

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn


def mlp(seed):
    torch.manual_seed(seed)
    layers, width = [], 40
    for _ in range(2):
        layers += [nn.Linear(width, 100), nn.BatchNorm1d(100), nn.ReLU(), nn.Dropout(0.2)]
        width = 100
    return nn.Sequential(*layers, nn.Linear(width, 10))


def fit(data, epochs, batch_size=100, seed=0):
    """Train and validate every epoch; returns the seconds each epoch took."""
    x, y = torch.as_tensor(data["x_train"]), torch.as_tensor(data["y_train"], dtype=torch.long)
    xv, yv = torch.as_tensor(data["x_val"]), torch.as_tensor(data["y_val"], dtype=torch.long)
    model = mlp(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            batch = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            float(loss_fn(logits, yv)), float((logits.argmax(1) == yv).float().mean())
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = dict(np.load(args.data))
    start = time.perf_counter()
    times = fit(data, args.epochs)
    total = time.perf_counter() - start
    print(json.dumps({"total": total, "first_epoch": times[0],
                      "later_epoch": statistics.median(times[1:]) if len(times) > 1 else None}))


if __name__ == "__main__":
    main()
