#!/usr/bin/env python3
"""Compares the outputs of two kdgrid runs bit for bit; exit 1 naming the first difference.

  compare_runs.py RUN_A RUN_B      run directories: the loss fields of every metrics.jsonl line
                                   (loss, ce, kl, val_loss, grad_norm, loss_scale, lr, ...) and
                                   every dataset of the final checkpoint's model.h5 and
                                   optimizer.h5
  compare_runs.py DIR_A DIR_B      directories of *.h5 shards: every dataset of each file
"""
import json
import os
import sys

import numpy as np

from kdgrid_cli_util import datasets, latest

FIELDS = ["step", "tokens_seen", "loss", "ce", "kl", "lr", "grad_norm", "loss_scale",
          "val_loss", "adv_ce", "adv_kl"]


def metrics(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def compare_shards(a, b):
    names = sorted(f for f in os.listdir(a) if f.endswith(".h5"))
    if names != sorted(f for f in os.listdir(b) if f.endswith(".h5")) or not names:
        sys.exit(f"shard files differ or are missing: {a} vs {b}")
    n = 0
    for name in names:
        da, db = datasets(os.path.join(a, name)), datasets(os.path.join(b, name))
        if sorted(da) != sorted(db):
            sys.exit(f"{name}: datasets differ")
        for k in sorted(da):
            if da[k].tobytes() != db[k].tobytes():
                sys.exit(f"{name} /{k}: not bit-identical")
            n += 1
    print(f"compare_runs: {len(names)} shard files, {n} datasets bit-identical")


def main(a, b):
    if not os.path.exists(os.path.join(a, "metrics.jsonl")):
        return compare_shards(a, b)
    ma, mb = metrics(a), metrics(b)
    if len(ma) != len(mb):
        sys.exit(f"metrics.jsonl: {len(ma)} lines in {a}, {len(mb)} in {b}")
    for i, (x, y) in enumerate(zip(ma, mb)):
        for k in FIELDS:
            if x.get(k) != y.get(k):
                sys.exit(f"metrics.jsonl line {i + 1}: {k} {x.get(k)!r} vs {y.get(k)!r}")
    n = 0
    for name in ("model.h5", "optimizer.h5"):
        pa, pb = os.path.join(latest(a), name), os.path.join(latest(b), name)
        if not (os.path.exists(pa) and os.path.exists(pb)):
            continue
        da, db = datasets(pa), datasets(pb)
        if sorted(da) != sorted(db):
            sys.exit(f"{name}: datasets differ: {sorted(set(da) ^ set(db))}")
        for k in sorted(da):
            if da[k].tobytes() != db[k].tobytes():
                diff = np.max(np.abs(da[k].astype(np.float64) - db[k].astype(np.float64)))
                sys.exit(f"{name} /{k}: not bit-identical (max |diff| {diff})")
            n += 1
    print(f"compare_runs: {len(ma)} metrics lines and {n} checkpoint datasets bit-identical")


if __name__ == "__main__":
    main(*sys.argv[1:3])
