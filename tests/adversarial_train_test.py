#!/usr/bin/python3
"""Online adversarial training (`train --adv-epsilon E --adv-weight W`).

--adv-epsilon 0 is a plain run bit for bit (every metrics value but timings, and the saved
weights). With E > 0 every step's loss is finite and differs from the plain run's, metrics.jsonl
has adv_loss with loss = (1 - W) ce + W adv_loss, and adv_loss > ce on the first step (the
perturbation follows the sign of the clean gradient, so it raises the loss to first order); tp 2
and dp 2 give the one-rank losses (within float rounding); --pp 2 exits 2 naming --adv-epsilon;
bad values exit 2 naming the option.

usage: adversarial_train_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import math
import os

import h5py
import numpy as np

import kdgrid_cli_util as k

VOCAB = 64
TIMINGS = {"step_time_s", "tokens_per_s", "mem_peak_mb"}


def weights(run_dir):
    """Every dataset of the final checkpoint's HDF5 files, by file and name."""
    step = k.latest(run_dir)
    out = {}
    for name in sorted(os.listdir(step)):
        if name.endswith(".h5"):
            for key, value in k.datasets(os.path.join(step, name)).items():
                out[(name, key)] = value
    return out


def test(work):
    data = os.path.join(work, "data")
    tokens = (np.arange(3000) * 7) % 20
    noise = np.random.default_rng(0).integers(0, VOCAB, 3000)
    tokens = np.where(np.random.default_rng(1).random(3000) < 0.1, noise, tokens)
    k.write_token_shard(os.path.join(data, "train.h5"), tokens, VOCAB)
    base = ["train", "--data", data, "--steps", 4, "--n-layer", 2, "--n-head", 2, "--d-model", 32,
            "--max-seq", 16, "--lr", 3e-3]

    def train(name, extra=(), np_=1, batch=4):
        run_dir = os.path.join(work, name)
        k.run(base + ["--run-dir", run_dir, "--batch-size", batch] + [str(a) for a in extra],
              np_=np_)
        return run_dir, k.metrics(run_dir)

    plain_dir, plain = train("plain")
    zero_dir, zero = train("zero", ["--adv-epsilon", 0])
    for a, b in zip(plain, zero):
        for key in a:
            if key not in TIMINGS:
                k.check(a[key] == b[key], f"--adv-epsilon 0 changed {key}: {a[key]} vs {b[key]}")
        k.check("adv_loss" not in b, "--adv-epsilon 0 wrote adv_loss")
    wp, wz = weights(plain_dir), weights(zero_dir)
    k.check(wp.keys() == wz.keys(), "checkpoint layouts differ")
    for key in wp:
        if wp[key].dtype.kind == "f":  # weights and optimizer moments
            k.check(np.array_equal(wp[key], wz[key]), f"--adv-epsilon 0 changed {key}")

    W = 0.3
    adv_dir, adv = train("adv", ["--adv-epsilon", 0.2, "--adv-weight", W])
    k.check(len(adv) == 4, f"{len(adv)} metrics lines")
    for a, p in zip(adv, plain):
        for key in ("loss", "ce", "adv_loss", "grad_norm"):
            k.check(key in a and math.isfinite(a[key]),
                    f"step {a['step']}: {key} missing or not finite")
        k.check(abs(a["loss"] - ((1 - W) * a["ce"] + W * a["adv_loss"])) < 1e-9 * a["loss"],
                f"step {a['step']}: loss {a['loss']} != (1-W) ce + W adv_loss")
        k.check(a["loss"] != p["loss"],
                f"step {a['step']}: the adversarial loss equals the plain one")
    k.check(adv[0]["ce"] == plain[0]["loss"], "the first clean loss differs from a plain run's")
    k.check(adv[0]["adv_loss"] > adv[0]["ce"],
            f"the perturbation did not raise the loss: {adv[0]['adv_loss']} <= {adv[0]['ce']}")

    # The same global batch of 4 sequences on each grid.
    for name, grid, batch in (("tp2", ["--tp", 2], 4), ("dp2", ["--dp", 2], 2)):
        extra = ["--adv-epsilon", 0.2, "--adv-weight", W] + grid
        _, other = train(name, extra, np_=2, batch=batch)
        for a, b in zip(adv, other):
            for key in ("loss", "adv_loss"):
                k.check(abs(a[key] - b[key]) < 1e-4 * abs(a[key]),
                        f"{name} step {a['step']}: {key} {b[key]} vs one rank {a[key]}")

    bad = os.path.join(work, "bad")
    k.run(base + ["--run-dir", bad, "--adv-epsilon", 0.1, "--pp", 2], np_=2, expect=2,
          needle="--adv-epsilon")
    k.run(base + ["--run-dir", bad, "--adv-epsilon", -1], expect=2, needle="--adv-epsilon")
    k.run(base + ["--run-dir", bad, "--adv-epsilon", 0.1, "--adv-weight", 1], expect=2,
          needle="--adv-weight")


if __name__ == "__main__":
    k.main(test)
