#!/usr/bin/python3
"""Online adversarial training (`train|distill --adv-epsilon E --adv-weight W`).

train: --adv-epsilon 0 is a plain run bit for bit (every metrics value but timings, and the
saved weights). With E > 0 every step's loss is finite and differs from the plain run's,
metrics.jsonl has adv_loss with loss = (1 - W) ce + W adv_loss, and adv_loss > ce on the first
step (the perturbation follows the sign of the clean gradient, so it raises the loss to first
order); tp 2, dp 2 and pp 2 give the one-rank losses (within float rounding); bad values exit 2
naming the option.

distill (online, the plain train run as teacher; offline from its top-k logits): the same
--adv-epsilon 0 identity; with E > 0, loss = (1 - W) clean + W adv_loss where both are the
distillation loss alpha T^2 kl + (1 - alpha) ce (adv_loss from adv_ce and adv_kl), the first
step's clean ce and kl are the plain run's (the teacher sees the clean tokens, the perturbation
only follows), adv_loss exceeds the clean loss there, and pp 2 gives the one-rank losses.

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


def check_same_run(plain_dir, plain, zero_dir, zero, what):
    """Every metrics value but timings and every float dataset of the final checkpoint equal."""
    k.check(len(plain) == len(zero), f"{what}: {len(plain)} vs {len(zero)} metrics lines")
    for a, b in zip(plain, zero):
        for key in a:
            if key not in TIMINGS:
                k.check(a[key] == b[key], f"{what}: --adv-epsilon 0 changed {key}: {a[key]} vs "
                        f"{b[key]}")
        k.check("adv_loss" not in b, f"{what}: --adv-epsilon 0 wrote adv_loss")
    wp, wz = weights(plain_dir), weights(zero_dir)
    k.check(wp.keys() == wz.keys(), f"{what}: checkpoint layouts differ")
    for key in wp:
        if wp[key].dtype.kind == "f":  # weights and optimizer moments
            k.check(np.array_equal(wp[key], wz[key]), f"{what}: --adv-epsilon 0 changed {key}")


def distill_test(work, data, teacher):
    T, ALPHA, W = 2.0, 0.4, 0.3
    base = ["distill", "--teacher", teacher, "--data", data, "--steps", 3, "--n-layer", 2,
            "--n-head", 2, "--d-model", 16, "--max-seq", 16, "--lr", 3e-3, "--kd-temperature", T,
            "--kd-alpha", ALPHA]

    def distill(name, extra=(), np_=1, batch=4, source=base):
        run_dir = os.path.join(work, name)
        k.run(source + ["--run-dir", run_dir, "--batch-size", batch] + [str(a) for a in extra],
              np_=np_)
        return run_dir, k.metrics(run_dir)

    def kd(ce, kl):
        return ALPHA * T * T * kl + (1 - ALPHA) * ce

    def check_adversarial(what, adv, plain):
        k.check(len(adv) == 3, f"{what}: {len(adv)} metrics lines")
        for a, p in zip(adv, plain):
            for key in ("loss", "ce", "kl", "adv_loss", "adv_ce", "adv_kl"):
                k.check(key in a and math.isfinite(a[key]),
                        f"{what} step {a['step']}: {key} missing or not finite")
            k.check(abs(a["adv_loss"] - kd(a["adv_ce"], a["adv_kl"])) < 1e-9 * a["adv_loss"],
                    f"{what} step {a['step']}: adv_loss is not the distillation loss of "
                    "adv_ce and adv_kl")
            want = (1 - W) * kd(a["ce"], a["kl"]) + W * a["adv_loss"]
            k.check(abs(a["loss"] - want) < 1e-9 * a["loss"],
                    f"{what} step {a['step']}: loss {a['loss']} != (1-W) clean + W adv {want}")
            k.check(a["loss"] != p["loss"],
                    f"{what} step {a['step']}: the adversarial loss equals the plain one")
        k.check(adv[0]["ce"] == plain[0]["ce"] and adv[0]["kl"] == plain[0]["kl"],
                f"{what}: the first clean pass differs from a plain run's")
        k.check(adv[0]["adv_loss"] > kd(adv[0]["ce"], adv[0]["kl"]),
                f"{what}: the perturbation did not raise the distillation loss")

    plain_dir, plain = distill("d_plain")
    zero_dir, zero = distill("d_zero", ["--adv-epsilon", 0])
    check_same_run(plain_dir, plain, zero_dir, zero, "online distill")
    _, adv = distill("d_adv", ["--adv-epsilon", 0.2, "--adv-weight", W])
    check_adversarial("online distill", adv, plain)
    # dp 1, pp 2, tp 1: the teacher and the student both split over two stages.
    _, pp2 = distill("d_pp2", ["--adv-epsilon", 0.2, "--adv-weight", W, "--pp", 2,
                               "--grad-accum", 2], np_=2, batch=2)
    for a, b in zip(adv, pp2):
        for key in ("loss", "adv_loss", "kl"):
            k.check(abs(a[key] - b[key]) < 1e-4 * abs(a[key]),
                    f"distill pp2 step {a['step']}: {key} {b[key]} vs one rank {a[key]}")

    # Offline: the teacher's top-k rows meet both passes' logits.
    logits = os.path.join(work, "topk")
    k.run(["teacher-logits", "--teacher", teacher, "--data", data, "--out", logits, "--topk", 8])
    offline = [a for a in base]
    offline[offline.index("--teacher") + 1] = logits
    offline[offline.index("--teacher")] = "--teacher-logits"
    _, off_plain = distill("o_plain", source=offline)
    _, off_adv = distill("o_adv", ["--adv-epsilon", 0.2, "--adv-weight", W], source=offline)
    check_adversarial("offline distill", off_adv, off_plain)


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
    check_same_run(plain_dir, plain, zero_dir, zero, "train")

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
    for name, grid, batch in (("tp2", ["--tp", 2], 4), ("dp2", ["--dp", 2], 2),
                              ("pp2", ["--pp", 2, "--grad-accum", 2], 2)):
        extra = ["--adv-epsilon", 0.2, "--adv-weight", W] + grid
        _, other = train(name, extra, np_=2, batch=batch)
        k.check(len(other) == len(adv), f"{name}: {len(other)} metrics lines")
        for a, b in zip(adv, other):
            for key in ("loss", "adv_loss"):
                k.check(abs(a[key] - b[key]) < 1e-4 * abs(a[key]),
                        f"{name} step {a['step']}: {key} {b[key]} vs one rank {a[key]}")

    distill_test(work, data, plain_dir)

    bad = os.path.join(work, "bad")
    k.run(base + ["--run-dir", bad, "--adv-epsilon", -1], expect=2, needle="--adv-epsilon")
    k.run(base + ["--run-dir", bad, "--adv-epsilon", 0.1, "--adv-weight", 1], expect=2,
          needle="--adv-weight")


if __name__ == "__main__":
    k.main(test)
