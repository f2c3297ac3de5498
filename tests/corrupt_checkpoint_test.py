#!/usr/bin/python3
"""A corrupted checkpoint through the command line (DESIGN sections 2 and 5).

A tiny run saves steps 2 and 4. One byte inside the data of a tensor of step 4's model.h5 is
flipped (the dataset's file offset from h5py), leaving the file a valid HDF5 file. Then:
  - `kdgrid eval --checkpoint STEP4_DIR` exits 2 and names the dataset (also on 2 ranks);
  - `kdgrid eval --checkpoint RUN_DIR` warns, falls back to step 2 and exits 0, printing
    exactly what evaluating step 2 directly prints;
  - resuming `kdgrid train` on the run directory falls back the same way and resumes at step 2.

usage: corrupt_checkpoint_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import os

import h5py

import kdgrid_cli_util as k

VOCAB = 61
DATASET = "model/blocks.1.mlp.fc1.weight"


def flip_byte(path, dataset, element):
    """XORs one byte of element `element` (float32) of a contiguous dataset, in place."""
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_offset()
        k.check(offset is not None, f"{dataset} has no contiguous storage in {path}")
    with open(path, "r+b") as f:
        f.seek(offset + 4 * element + 1)
        byte = f.read(1)[0]
        f.seek(offset + 4 * element + 1)
        f.write(bytes([byte ^ 0x10]))


def test(work):
    data = os.path.join(work, "data")
    run_dir = os.path.join(work, "run")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"), k.random_tokens(2000, VOCAB, 3), VOCAB)
    args = ["--n-layer", 2, "--n-head", 2, "--d-model", 32, "--max-seq", 16]
    train = ["train", "--data", data, "--run-dir", run_dir, "--batch-size", 4,
             "--save-every", 2] + args
    k.run(train + ["--steps", 4])
    step2, step4 = k.step_dir(run_dir, 2), k.step_dir(run_dir, 4)
    k.check(k.latest(run_dir) == step4, f"latest is {k.latest(run_dir)}")

    evaluate = ["eval", "--data", data, "--max-tokens", 400]
    good2 = k.run(evaluate + ["--checkpoint", step2]).stdout
    good4 = k.run(evaluate + ["--checkpoint", step4]).stdout
    k.check(good2 != good4, "steps 2 and 4 evaluate the same: the fallback would be invisible")

    # ckpt inspect: metadata and every tensor with its shape and checksum.
    r = k.run(["ckpt", "inspect", step4])
    k.check("step = 4" in r.stdout and "grid = 1,1,1" in r.stdout, f"ckpt inspect:\n{r.stdout}")
    for tensor, shape in (("tok_emb", f"[{VOCAB}, 32]"), ("blocks.1.mlp.fc2.weight", "[32, 128]"),
                          ("ln_f.bias", "[32]")):
        line = next((x for x in r.stdout.splitlines() if x.split()[:1] == [tensor]), "")
        k.check(shape in line and "checksum" in line, f"ckpt inspect shows {tensor} as {line!r}")

    flip_byte(os.path.join(step4, "model.h5"), DATASET, element=37)
    name = DATASET.split("/")[-1]
    k.run(["ckpt", "inspect", step4], expect=2, needle=name)
    for np_ in (1, 2):
        r = k.run(evaluate + ["--checkpoint", step4], np_, expect=2, needle=name)
        k.check(r.stdout == "", f"a failed eval printed a result: {r.stdout}")
    r = k.run(evaluate + ["--checkpoint", run_dir], needle="warning")
    k.check(r.stdout == good2, f"fallback printed {r.stdout!r}, step 2 gives {good2!r}")
    k.check(name in r.stderr and "step_00000002" in r.stderr,
            f"the warning does not say what was wrong and what was used:\n{r.stderr}")

    # Training on the run directory resumes from the intact step 2 and redoes steps 3-4.
    r = k.run(train + ["--steps", 5])
    k.check("step_00000002" in r.stderr and "resumed" in r.stderr,
            f"train did not resume from step 2:\n{r.stderr}")
    steps = [line["step"] for line in k.metrics(run_dir)]
    k.check(steps == [1, 2, 3, 4, 3, 4, 5], f"metrics steps after the fallback: {steps}")


if __name__ == "__main__":
    k.main(test)
