#!/usr/bin/python3
"""fp16 dynamic loss scaling (DESIGN section 9): a step whose scaled gradients overflow is
skipped, the scale halves, and weights and AdamW state stay exactly as they were.

Two clean fp16 steps are trained and checkpointed. The saved loss scale in the step-2
optimizer.h5 (the state a resumed run continues from, DESIGN section 5) is then raised to 2^24,
which makes the head's scaled d loss / d logit (2^24 / 64 tokens per unit of probability error)
overflow fp16, and training resumes with a checkpoint after every step. For each step after
that: when metrics.jsonl marks it skipped, the scale is half the previous one and every dataset
of its model.h5 and optimizer.h5 equals the previous checkpoint's bit for bit; when it is clean,
the scale is unchanged and the weights moved. The scale must come down to one that fits, after
which the run trains again. optimizer.h5's adam_steps (AdamW's bias-correction count) rises on
clean steps only.

usage: fp16_overflow_test.py   (KDGRID_BIN in the environment)
"""
import os

import h5py
import numpy as np

import kdgrid_cli_util as k

VOCAB = 61
HUGE_SCALE = 2.0 ** 24
STEPS = 12


def train_args(data, run_dir, steps):
    return ["train", "--data", data, "--run-dir", run_dir, "--steps", steps, "--n-layer", 2,
            "--n-head", 2, "--d-model", 32, "--max-seq", 16, "--batch-size", 4, "--seed", 5,
            "--precision", "fp16", "--save-every", 1, "--keep-checkpoints", 100]


def scale_on_disk(step_dir):
    return float(k.root_attrs(os.path.join(step_dir, "optimizer.h5"))["loss_scale"])


def adam_steps_on_disk(step_dir):
    return int(k.root_attrs(os.path.join(step_dir, "optimizer.h5"))["adam_steps"])


def test(work):
    data = os.path.join(work, "data")
    run_dir = os.path.join(work, "run")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"), k.random_tokens(3000, VOCAB, 2), VOCAB)

    k.run(train_args(data, run_dir, 2))
    m = k.metrics(run_dir)
    k.check([line["skipped"] for line in m] == [False, False],
            f"the first fp16 steps overflowed: {m}")
    k.check(m[0]["loss_scale"] == m[1]["loss_scale"] == 65536.0, f"initial loss scale: {m}")

    with h5py.File(os.path.join(k.step_dir(run_dir, 2), "optimizer.h5"), "r+") as f:
        f.attrs.modify("loss_scale", np.float64(HUGE_SCALE))
    k.run(train_args(data, run_dir, STEPS))

    m = k.metrics(run_dir)
    k.check(len(m) == STEPS, f"{len(m)} metric lines, expected {STEPS}")
    previous_scale = HUGE_SCALE
    skipped = []
    for line in m[2:]:
        step = line["step"]
        before, after = k.step_dir(run_dir, step - 1), k.step_dir(run_dir, step)
        k.check(scale_on_disk(after) == line["loss_scale"],
                f"step {step}: optimizer.h5 loss_scale {scale_on_disk(after)} vs metrics {line}")
        # AdamW's bias correction counts applied updates only (as PyTorch's GradScaler).
        updates = adam_steps_on_disk(after) - adam_steps_on_disk(before)
        k.check(updates == (0 if line["skipped"] else 1),
                f"step {step} (skipped {line['skipped']}): adam_steps went up by {updates}")
        if line["skipped"]:
            skipped.append(step)
            k.check(line["loss_scale"] == previous_scale / 2,
                    f"step {step} skipped but the scale went {previous_scale} -> "
                    f"{line['loss_scale']}")
            k.assert_same_datasets(os.path.join(before, "model.h5"),
                                   os.path.join(after, "model.h5"),
                                   f"model.h5 across skipped step {step}")
            k.assert_same_datasets(os.path.join(before, "optimizer.h5"),
                                   os.path.join(after, "optimizer.h5"),
                                   f"optimizer.h5 (AdamW moments) across skipped step {step}")
        else:
            k.check(line["loss_scale"] == previous_scale,
                    f"clean step {step} changed the scale {previous_scale} -> {line['loss_scale']}")
            w0 = k.datasets(os.path.join(before, "model.h5"))
            w1 = k.datasets(os.path.join(after, "model.h5"))
            k.check(any(not np.array_equal(w0[n], w1[n]) for n in w0),
                    f"clean step {step} left the weights unchanged")
        previous_scale = line["loss_scale"]
    k.check(skipped and skipped[0] == 3,
            f"the step after raising the scale was not skipped: {m[2:]}")
    k.check(not m[-1]["skipped"], f"the scale never came down to one that fits: {m}")
    k.check(adam_steps_on_disk(k.step_dir(run_dir, STEPS)) == STEPS - len(skipped),
            f"adam_steps after {STEPS} steps with {len(skipped)} skipped")
    print(f"skipped steps {skipped}; scale {HUGE_SCALE:g} -> {m[-1]['loss_scale']:g}")


if __name__ == "__main__":
    k.main(test)
