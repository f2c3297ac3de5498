#!/usr/bin/python3
"""Usage errors of `kdgrid train` (DESIGN section 2): a missing --data or --run-dir, a bad
--precision or --recompute, and a --vocab-size smaller than the shards' exit 2 with one
message naming the flag, on 1 rank and on 2 (every rank detects them alike, so rank 0 reports
once and no rank aborts: no MPI_ABORT banner), and leave no run directory behind when they are
found before training starts. A valid command line on the same data trains (exit 0), so the
errors come from the flag under test.

usage: train_usage_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import os

import kdgrid_cli_util as k

VOCAB = 61


def test(work):
    data = os.path.join(work, "data")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"), k.random_tokens(800, VOCAB, 6), VOCAB)
    model = ["--n-layer", 1, "--n-head", 2, "--d-model", 16, "--max-seq", 8, "--batch-size", 2,
             "--steps", 1]

    def args_with(run_dir, drop=(), **flags):
        base = {"--data": data, "--run-dir": run_dir}
        base.update({"--" + name.replace("_", "-"): value for name, value in flags.items()})
        out = ["train"] + model
        for flag, value in base.items():
            if flag not in drop:
                out += [flag, value]
        return out

    cases = [
        ("--data", dict(drop=("--data",))),
        ("--run-dir", dict(drop=("--run-dir",))),
        ("--precision", dict(precision="fp8")),
        ("--recompute", dict(recompute="some")),
        ("--vocab-size", dict(vocab_size=VOCAB - 1)),
    ]
    for np_ in (1, 2):
        for flag, spec in cases:
            run_dir = os.path.join(work, f"run_{flag.strip('-')}_{np_}")
            r = k.run(args_with(run_dir, **spec), np_, expect=2, needle=flag)
            everything = r.stdout + r.stderr
            k.check(abort_free(everything), f"{flag} on {np_} rank(s) aborted MPI:\n{everything}")
            k.check(everything.count("error:") == 1,
                    f"{flag} on {np_} rank(s): expected one error message:\n{everything}")
            if flag != "--run-dir":
                k.check(not os.path.exists(os.path.join(run_dir, "metrics.jsonl")),
                        f"{flag} on {np_} rank(s) started training")
        k.run(args_with(os.path.join(work, f"ok_{np_}")), np_)


def abort_free(text):
    return k.ABORT_BANNER not in text and "MPI_Abort" not in text


if __name__ == "__main__":
    k.main(test)
