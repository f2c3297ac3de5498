#!/usr/bin/python3
"""`kdgrid eval`'s windowing contract (DESIGN section 2): the shards' tokens in file-name order,
concatenated across shards, as consecutive non-overlapping windows of max_seq + 1 tokens
(inputs the first max_seq, targets the next token at each position), the incomplete tail
dropped, stopping after --max-tokens target tokens; ONE JSON line {"loss", "ppl", "tokens"} on
stdout with ppl = exp(loss).

Two shards of known tokens (30 + 32 = 62 tokens, max_seq 8: 6 windows, the 4th spanning both
shards, an 8-token tail dropped, 48 targets) are scored by a tiny trained checkpoint for several
--max-tokens. `tokens` must be exactly what the contract gives, and `loss` must equal the mean
cross-entropy of exactly those targets computed by the independent float64 PyTorch model of
tests/golden/gpt2_reference.py from the checkpoint's model.h5 (a window shifted by one token,
a target too many or a window read across the shard boundary wrongly would all change it).
The result may not depend on --batch-size, nor on the ranks: --dp 2 under mpirun gives the
same tokens and the same loss within 1e-6 relative.

usage: eval_windowing_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import json
import math
import os
import sys

import numpy as np
import torch

import kdgrid_cli_util as k

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import gpt2_reference as ref  # noqa: E402

VOCAB = 61
T = 8
# fp32 kdgrid against float64 (see kLossRelTol in tests/test_golden.cpp: <= 61 u in the
# log-sum-exp, ~1e-6 relative at worst; measured there ~1e-8).
LOSS_REL_TOL = 1e-6


def expected_losses(model_h5, stream):
    """Per-target cross-entropy, float64, in stream order over the complete windows."""
    cfg, params = ref.load_model(model_h5)
    p = {n: torch.tensor(v, dtype=torch.float64) for n, v in params.items()}
    windows = len(stream) // (T + 1)
    w = np.asarray(stream[:windows * (T + 1)]).reshape(windows, T + 1)
    inputs, targets = ref.split_windows(w)
    with torch.no_grad():
        logits = ref.forward(p, cfg, inputs)
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1),
                                               reduction="none")
    return ce.numpy()


def eval_line(checkpoint, data, max_tokens, np_=1, batch=None):
    args = ["eval", "--checkpoint", checkpoint, "--data", data, "--max-tokens", max_tokens]
    if batch:
        args += ["--batch-size", batch]
    if np_ > 1:
        args += ["--dp", np_]
    r = k.run(args, np_)
    lines = r.stdout.splitlines()
    k.check(len(lines) == 1, f"eval printed {len(lines)} lines on stdout: {r.stdout!r}")
    out = json.loads(lines[0])
    k.check(sorted(out) == ["loss", "ppl", "tokens"], f"eval fields: {out}")
    k.check(math.isclose(out["ppl"], math.exp(out["loss"]), rel_tol=1e-12),
            f"ppl != exp(loss): {out}")
    return out


def test(work):
    train_data, eval_data = os.path.join(work, "train"), os.path.join(work, "eval")
    run_dir = os.path.join(work, "run")
    k.write_token_shard(os.path.join(train_data, "t.h5"), k.random_tokens(1500, VOCAB, 4), VOCAB)
    k.run(["train", "--data", train_data, "--run-dir", run_dir, "--steps", 3, "--n-layer", 2,
           "--n-head", 2, "--d-model", 32, "--max-seq", T, "--batch-size", 4, "--lr", 3e-3])

    # File-name order, not creation order: write b first.
    stream = k.random_tokens(62, VOCAB, 5)
    k.write_token_shard(os.path.join(eval_data, "b_second.h5"), stream[30:], VOCAB)
    k.write_token_shard(os.path.join(eval_data, "a_first.h5"), stream[:30], VOCAB)
    ce = expected_losses(os.path.join(k.latest(run_dir), "model.h5"), stream)
    available = (len(stream) // (T + 1)) * T
    k.check(available == 48 and len(ce) == 48, "test data set up wrongly")

    worst = 0.0
    for max_tokens in (0, 1, 5, 8, 9, 23, 47, 48, 100):
        want_tokens = available if max_tokens == 0 else min(max_tokens, available)
        want_loss = float(ce[:want_tokens].mean())
        for batch in (None, 1, 4) if max_tokens in (0, 9, 47) else (None,):
            out = eval_line(run_dir, eval_data, max_tokens, batch=batch)
            k.check(out["tokens"] == want_tokens,
                    f"--max-tokens {max_tokens} --batch-size {batch}: tokens {out['tokens']}, "
                    f"expected {want_tokens}")
            k.check(math.isclose(out["loss"], want_loss, rel_tol=LOSS_REL_TOL),
                    f"--max-tokens {max_tokens} --batch-size {batch}: loss {out['loss']!r}, the "
                    f"reference gives {want_loss!r} over the first {want_tokens} targets")
            worst = max(worst, abs(out["loss"] - want_loss) / want_loss)
        if max_tokens in (0, 23, 100):
            two = eval_line(run_dir, eval_data, max_tokens, np_=2)
            k.check(two["tokens"] == want_tokens, f"--dp 2 --max-tokens {max_tokens}: {two}")
            k.check(math.isclose(two["loss"], out["loss"], rel_tol=1e-6),
                    f"--dp 2 --max-tokens {max_tokens}: loss {two['loss']!r} vs 1 rank "
                    f"{out['loss']!r}")

    print(f"largest relative loss error against the float64 reference: {worst:.3g}")

    # Fewer than max_seq + 1 tokens: nothing to score is an input error naming --data.
    short = os.path.join(work, "short")
    k.write_token_shard(os.path.join(short, "s.h5"), stream[:T], VOCAB)
    k.run(["eval", "--checkpoint", run_dir, "--data", short], expect=2, needle="--data")


if __name__ == "__main__":
    k.main(test)
