#!/usr/bin/python3
"""slurm/sweep.sh and slurm/gather.sh on the test cluster.

A 2 x 2 grid (lr x warmup-steps) of 1-task training runs goes in as one job array; every task
must complete in its own run directory (named from its options) with the options it was given
(its config.ini), and gather.sh must print one row per run sorted by validation loss, each loss
equal to what `kdgrid eval` prints for that run. A run without a checkpoint is listed last with
the reason and makes gather.sh exit 1. The random sample (--sample, --seed) is reproducible,
distinct and a subset of the grid; malformed sweep specs exit 2.

usage: slurm_sweep_test.py   (KDGRID_BIN, KDGRID_SOURCE_DIR, KDGRID_SLURM_STATE set by CTest)
"""
import json
import os
import shutil
import subprocess

import slurm_util as s
from slurm_util import k

VOCAB = 97
SWEEP = ["lr=3e-3,3e-4", "warmup-steps=0,4"]


def sweep_sh(args, cwd, expect=0):
    r = subprocess.run([os.path.join(s.SLURM_DIR, "sweep.sh")] + args, cwd=cwd, capture_output=True,
                       text=True)
    k.check(r.returncode == expect, f"sweep.sh {args} exited {r.returncode}, expected {expect}:\n"
            f"{r.stdout}{r.stderr}")
    return r


def table_rows(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f][1:]


def test(work):
    train, val = os.path.join(work, "train"), os.path.join(work, "val")
    k.write_token_shard(os.path.join(train, "tokens_000.h5"), k.random_tokens(3000, VOCAB, 1), VOCAB)
    k.write_token_shard(os.path.join(val, "tokens_000.h5"), k.random_tokens(600, VOCAB, 2), VOCAB)
    config = os.path.join(work, "base.ini")
    s.write_config(config, {"data": train, "val-data": val, "steps": 8, "n-layer": 1,
                            "n-head": 2, "d-model": 32, "max-seq": 16, "batch-size": 4,
                            "precision": "fp32"})
    script = os.path.join(s.SLURM_DIR, "train.sbatch")
    sweep_dir = os.path.join(work, "sweep")

    # Usage errors name what is wrong.
    for bad, needle in (([script, config, sweep_dir], "NAME=V1"), ([script, config, sweep_dir, "lr"],
                        "NAME=V1,V2"), ([script, config, sweep_dir, "lr=1,,2"], "empty value"),
                        ([script, config, sweep_dir, "lr=1", "lr=2"], "given twice"),
                        (["--sample", "9", script, config, sweep_dir] + SWEEP, "only 4")):
        r = sweep_sh(bad, work, expect=2)
        k.check(needle in r.stderr, f"sweep.sh {bad}: no '{needle}' in {r.stderr}")

    # The random sample: reproducible, distinct, within the grid.
    full = os.path.join(work, "dry-full")
    sweep_sh(["--dry-run", script, config, full, "lr=1,2,3", "seed=4,5,6"], work)
    grid = {row[1]: row[2] for row in table_rows(os.path.join(full, "sweep.tsv"))}
    k.check(len(grid) == 9, f"a 3 x 3 grid gave {len(grid)} rows")
    samples = []
    for name in ("dry-a", "dry-b"):
        sweep_sh(["--dry-run", "--sample", "4", "--seed", "7", script, config,
                  os.path.join(work, name), "lr=1,2,3", "seed=4,5,6"], work)
        samples.append(table_rows(os.path.join(work, name, "sweep.tsv")))
    k.check(samples[0] == samples[1], f"the same seed drew {samples[0]} and {samples[1]}")
    k.check([int(r[0]) for r in samples[0]] == [0, 1, 2, 3], f"task ids {samples[0]}")
    k.check(len({r[1] for r in samples[0]}) == 4 and all(grid.get(r[1]) == r[2] for r in samples[0]),
            f"sample {samples[0]} is not 4 distinct grid points")

    # The real sweep: 4 array tasks of 1 rank each.
    out = sweep_sh(["--sbatch-arg=--ntasks=1", script, config, sweep_dir] + SWEEP, work).stdout
    with open(os.path.join(sweep_dir, "array_job")) as f:
        job = f.read().strip()
    s._submitted.append(job)
    k.check(f"job array {job}" in out, f"sweep.sh output: {out}")
    rows = table_rows(os.path.join(sweep_dir, "sweep.tsv"))
    k.check([r[1] for r in rows] == ["lr3e-3_warmup-steps0", "lr3e-3_warmup-steps4",
                                     "lr3e-4_warmup-steps0", "lr3e-4_warmup-steps4"],
            f"run names {[r[1] for r in rows]}")
    states = s.wait_until(lambda: (lambda st: st if len(st) == 4 and all(
        v in s.FINAL_STATES for v in st.values()) else None)(s.array_states(job)),
        f"array job {job} to end")
    k.check(all(v == "COMPLETED" for v in states.values()), f"array tasks ended {states}:\n" +
            "\n".join(s.read(os.path.join(sweep_dir, "logs", f)) for f in
                      sorted(os.listdir(os.path.join(sweep_dir, "logs")))))
    for task, name, flags in rows:
        ini = s.read(os.path.join(sweep_dir, "runs", name, "config.ini"))
        lr, warmup = flags.split()[1], flags.split()[3]
        k.check(f"lr = {float(lr):g}" in ini or f"lr = {lr}" in ini, f"{name}: config.ini lr:\n{ini}")
        k.check(f"warmup-steps = {warmup}\n" in ini, f"{name}: config.ini warmup-steps:\n{ini}")
        k.check(os.path.basename(k.latest(os.path.join(sweep_dir, "runs", name))) == "step_00000008",
                f"{name}: not finished")

    # gather.sh: one row per run, sorted by val_loss, equal to kdgrid eval's own output.
    gather = os.path.join(s.SLURM_DIR, "gather.sh")
    r = subprocess.run([gather, sweep_dir], cwd=work, capture_output=True, text=True)
    k.check(r.returncode == 0, f"gather.sh exited {r.returncode}:\n{r.stdout}{r.stderr}")
    print(r.stdout, end="")
    results = table_rows(os.path.join(sweep_dir, "results.tsv"))
    k.check(sorted(row[4] for row in results) == sorted(row[1] for row in rows),
            f"results.tsv runs {[row[4] for row in results]}")
    losses = [float(row[0]) for row in results]
    k.check(losses == sorted(losses), f"results not sorted by val_loss: {losses}")
    k.check(len(set(losses)) == 4, f"runs with different options gave equal losses: {losses}")
    for row in results:
        ev = json.loads(k.run(["eval", "--checkpoint", os.path.join(sweep_dir, "runs", row[4]),
                               "--data", val]).stdout)
        k.check(float(row[0]) == ev["loss"] and int(row[2]) == ev["tokens"] and row[3] == "8",
                f"{row[4]}: gathered {row[:4]} but eval says {ev}")

    # A run that never saved is reported, last, and fails the gather.
    lost = rows[0][1]
    shutil.rmtree(os.path.join(sweep_dir, "runs", lost, "checkpoints"))
    r = subprocess.run([gather, sweep_dir], cwd=work, capture_output=True, text=True)
    k.check(r.returncode == 1, f"gather.sh with a lost run exited {r.returncode}")
    last = table_rows(os.path.join(sweep_dir, "results.tsv"))[-1]
    k.check(last[4] == lost and "no checkpoint" in last[6], f"last row {last}")


if __name__ == "__main__":
    s.main(test)
