#!/usr/bin/python3
"""Bit-exact resume (DESIGN sections 3 and 5): an fp32 `kdgrid train` of 8 steps run straight
through, and the same run stopped by SIGUSR1 after every one of its first 4 steps (each time:
exit 75 after saving; the next start resumes from that checkpoint) and then resumed to the end,
give identical metrics (every field but timings and memory) and bit-identical final model.h5
and optimizer.h5 (every dataset and the training state). The data holds 5 steps' windows, so
the data cursor crosses an epoch after a resume. Once on one rank and once on two (dp=2 under
mpirun). The signal reaches the ranks before their first step ends through a gate that does
not depend on timing (kdgrid_cli_util.train_stopped_by_signal).

usage: train_resume_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import os

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


if __name__ == "__main__":
    k.main(test)
