#!/usr/bin/python3
"""Bit-exact resume (DESIGN sections 3 and 5): an fp32 `kdgrid train` of 8 steps run straight
through, and the same run stopped by SIGUSR1 after every one of its first 4 steps (each time:
exit 75 after saving; the next start resumes from that checkpoint) and then resumed to the end,
give identical metrics (every field but timings and memory) and bit-identical final model.h5
and optimizer.h5 (every dataset and the training state). The data holds 5 steps' windows, so
the data cursor crosses an epoch after a resume. Once on one rank and once on two (dp=2 under
mpirun). The signal reaches the ranks before their first step ends through a gate that does
not depend on timing (kdgrid_cli_util.train_stopped_by_signal).

Resume safety (DESIGN section 3; src/train/resume_config.h): a run stopped after step 1 refuses
to resume with a model flag or --seed of another value than its checkpoint's, given on the
command line or in --config (exit 2, one message naming the flag, both values and the
checkpoint, on 1 and 2 ranks; nothing written), or when its checkpoint's architecture is not the
command's; resumes when the same flags are repeated; and
resumes when the model flags and --seed are left out, taking the checkpoint's (config.ini shows
them) and ending bit-identical to the straight run, which needs the checkpoint's seed (it orders
the data) as much as its model.

usage: train_resume_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import os
import shutil

import h5py

import kdgrid_cli_util as k

STEPS = 8
STOPS = 4
VOCAB = 97
TIMING_FIELDS = {"step_time_s", "tokens_per_s", "mem_peak_mb"}
STATE_ATTRS = ("step", "tokens_seen", "loss_scale", "good_steps", "adam_steps", "best_val_loss", "cursor_epoch",
               "cursor_position")


def train_args(data, run_dir, np_):
    # Global batch 4 windows of 17 tokens on both grids; 20 windows = 5 steps per epoch.
    return ["train", "--data", data, "--run-dir", run_dir, "--steps", STEPS, "--n-layer", 2,
            "--n-head", 2, "--d-model", 32, "--max-seq", 16, "--batch-size", 4 // np_,
            "--dp", np_, "--seed", 3, "--lr", 1e-3, "--warmup-steps", 2, "--precision", "fp32"]


def stop_and_resume(data, run_dir, np_):
    """Four stops by signal, then a resume to the end. Returns the steps it stopped at."""
    stops = []
    for _ in range(STOPS):
        rc, err = k.train_stopped_by_signal(train_args(data, run_dir, np_), run_dir, np_)
        k.check(rc == 75, f"a stopped run must exit 75, got {rc}:\n{err}")
        k.check("stop requested" in err, f"no stop message:\n{err}")
        step = int(os.path.basename(k.latest(run_dir))[len("step_"):])
        k.check(len(k.metrics(run_dir)) == step,
                f"stopped at step {step} but metrics.jsonl has {len(k.metrics(run_dir))} lines")
        stops.append(step)
    k.check(stops == list(range(1, STOPS + 1)), f"stopped after steps {stops}")
    r = k.run(train_args(data, run_dir, np_), np_)
    k.check("resumed from" in r.stderr, f"the last run did not resume:\n{r.stderr}")
    return stops


def compare_runs(straight, resumed, what):
    m1, m2 = k.metrics(straight), k.metrics(resumed)
    k.check(len(m1) == STEPS and len(m2) == STEPS, f"{what}: {len(m1)} and {len(m2)} metric lines")
    for a, b in zip(m1, m2):
        fa = {key: v for key, v in a.items() if key not in TIMING_FIELDS}
        fb = {key: v for key, v in b.items() if key not in TIMING_FIELDS}
        k.check(fa == fb, f"{what}: step {a['step']} differs:\n{fa}\n{fb}")
    # Losses must move, or equal lines would not show the updates were resumed correctly.
    k.check(len({line["loss"] for line in m1}) == STEPS, f"{what}: repeated losses {m1}")
    c1, c2 = k.latest(straight), k.latest(resumed)
    k.check(os.path.basename(c1) == os.path.basename(c2) == f"step_{STEPS:08d}",
            f"{what}: latest {c1} vs {c2}")
    k.assert_same_datasets(os.path.join(c1, "model.h5"), os.path.join(c2, "model.h5"),
                           f"{what} model.h5")
    opt = k.assert_same_datasets(os.path.join(c1, "optimizer.h5"), os.path.join(c2, "optimizer.h5"),
                                 f"{what} optimizer.h5")
    k.check(any(name.startswith("m/") for name in opt), f"{what}: optimizer.h5 holds no moments")
    a1 = k.root_attrs(os.path.join(c1, "optimizer.h5"))
    a2 = k.root_attrs(os.path.join(c2, "optimizer.h5"))
    for attr in STATE_ATTRS:
        k.check(a1[attr] == a2[attr],
                f"{what}: optimizer.h5 attribute {attr}: {a1[attr]} vs {a2[attr]}")
    k.check(a1["cursor_epoch"] >= 1, f"{what}: the data cursor never crossed an epoch")


def ini_values(run_dir):
    """config.ini as {name: value} (its single-valued lines)."""
    with open(os.path.join(run_dir, "config.ini")) as f:
        return dict(line.rstrip("\n").split(" = ", 1) for line in f if " = " in line)


def resume_flags(data, straight, work):
    """Conflicting, repeated and left-out flags on resume (see the module docstring)."""
    run_dir = os.path.join(work, "flags")
    full = train_args(data, run_dir, 1)
    rc, err = k.train_stopped_by_signal(full, run_dir)
    k.check(rc == 75, f"the first part must stop after a step (exit 75), got {rc}:\n{err}")
    step1 = k.step_dir(run_dir, 1)
    k.check(k.latest(run_dir) == step1, f"latest is {k.latest(run_dir)}, not {step1}")
    with open(os.path.join(run_dir, "config.ini")) as f:
        config_before = f.read()

    # Everything but the model flags and --seed (the grid, batch and schedule stay as they were).
    def short(run=run_dir):
        return ["train", "--data", data, "--run-dir", run, "--steps", STEPS, "--lr", 1e-3,
                "--warmup-steps", 2, "--precision", "fp32"]

    config_file = os.path.join(work, "conflict.ini")
    with open(config_file, "w") as f:
        f.write("n-layer = 3\n")
    conflicts = [
        (["--d-model", 64], "--d-model 64 differs from the checkpoint's d_model 32"),
        (["--seed", 4], "--seed 4 differs from the checkpoint's seed 3"),
        (["--config", config_file], "--n-layer 3 differs from the checkpoint's n_layer 2"),
    ]
    for np_ in (1, 2):
        for extra, needle in conflicts:
            r = k.run(short() + extra + ["--dp", np_, "--batch-size", 4 // np_], np_, expect=2,
                      needle=needle)
            what = f"{' '.join(map(str, extra))} on {np_} rank(s)"
            k.check(step1 in r.stderr, f"{what}: the message does not name {step1}:\n{r.stderr}")
            k.check(r.stderr.count("error:") == 1 and k.ABORT_BANNER not in r.stdout + r.stderr,
                    f"{what}: expected one error message and no abort:\n{r.stderr}")
            with open(os.path.join(run_dir, "config.ini")) as f:
                k.check(f.read() == config_before, f"{what}: config.ini was rewritten")
            k.check(len(k.metrics(run_dir)) == 1 and k.latest(run_dir) == step1,
                    f"{what}: the refused resume trained")

    # An attribute no flag sets (architecture) must be what this command's model writes.
    other = os.path.join(work, "other_architecture")
    shutil.copytree(run_dir, other)
    with h5py.File(os.path.join(k.step_dir(other, 1), "model.h5"), "r+") as f:
        f["model"].attrs["architecture"] = "llama"
    k.run(short(other) + ["--batch-size", 4], 1, expect=2,
          needle="the checkpoint's architecture llama differs from this command's gpt2")

    # The same flags again: resumes (stopped once more, after step 2).
    rc, err = k.train_stopped_by_signal(full, run_dir)
    k.check(rc == 75 and "resumed from" in err,
            f"resuming with the same flags: exit {rc}, expected 75 after a resume:\n{err}")
    k.check(k.latest(run_dir) == k.step_dir(run_dir, 2), f"latest is {k.latest(run_dir)}")

    # Left out: the checkpoint's model and seed.
    r = k.run(short() + ["--batch-size", 4], 1)
    k.check(f"resumed from {k.step_dir(run_dir, 2)}" in r.stderr, f"no resume:\n{r.stderr}")
    ini = ini_values(run_dir)
    want = {"n-layer": "2", "n-head": "2", "d-model": "32", "d-ff": "128", "max-seq": "16",
            "vocab-size": str(VOCAB), "attn-window": "0", "seed": "3"}
    got = {name: ini.get(name) for name in want}
    k.check(got == want, f"config.ini after a resume without model flags: {got}, want {want}")
    k.check([m["step"] for m in k.metrics(run_dir)] == list(range(1, STEPS + 1)),
            f"steps in metrics.jsonl: {[m['step'] for m in k.metrics(run_dir)]}")
    compare_runs(straight, run_dir, "resumed without model flags and --seed")
    print("resume flags: conflicts refused (exit 2), repeated flags resume, left-out flags are "
          "the checkpoint's: identical to the straight run")


def test(work):
    data = os.path.join(work, "data")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"),
                        k.random_tokens(20 * 17 + 9, VOCAB, 1), VOCAB)
    for np_ in (1, 2):
        straight = os.path.join(work, f"straight{np_}")
        resumed = os.path.join(work, f"resumed{np_}")
        k.run(train_args(data, straight, np_), np_)
        stops = stop_and_resume(data, resumed, np_)
        compare_runs(straight, resumed, f"{np_} rank(s), stopped at {stops}")
        print(f"{np_} rank(s): stopped after steps {stops}, resumed to {STEPS}: identical")
    resume_flags(data, os.path.join(work, "straight1"), work)


if __name__ == "__main__":
    k.main(test)
