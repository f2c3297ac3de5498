#!/usr/bin/python3
"""Per-rank peak resident memory (VmHWM, from /usr/bin/time's %M around each rank) of short
`kdgrid train` runs:

  zero        mpirun -np 4, --dp 4, --save-every 1, a model whose AdamW moments dominate, with
              and without --zero 1. ZeRO-1 keeps 1/dp of the moments (2 * 4 bytes * n_params)
              on each rank and saves and loads only that shard, so the peak should drop by
              about the moments' (dp-1)/dp share; the check asks for at least half of it.
  grad-accum  mpirun -np 2, --pp 2, --grad-accum 1, 2, 4, 8: under 1F1B a stage holds the
              activations (and send buffers) of at most pp - stage micro-batches, so the peak
              must not grow with grad_accum.

  bench/memory_bench.py [--kdgrid build/kdgrid] [--mpirun mpirun]
Prints figures only; not a test (the machine's other load moves RSS a little).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

VOCAB = 4096


def write_tokens(out_dir, n_tokens):
    os.makedirs(out_dir)
    tokens = np.random.default_rng(0).integers(0, VOCAB - 1, n_tokens).astype(np.uint16)
    with h5py.File(os.path.join(out_dir, "bench.h5"), "w") as f:
        f.attrs["format"] = "kdgrid-tokens"
        f.attrs["format_version"] = 1
        f.attrs["vocab_size"] = VOCAB
        f.attrs["eot_token"] = VOCAB - 1
        f.attrs["tokenizer_sha256"] = "00" * 32
        f.create_dataset("tokens", data=tokens)
        f.create_dataset("doc_offsets", data=np.array([0, n_tokens], dtype=np.uint64))


def run(args, work, name, np_, train_args):
    """Runs kdgrid train on np_ ranks; returns (per-rank peak RSS in MiB, stdout + stderr)."""
    hwm = os.path.join(work, name + ".hwm")
    # Each rank runs under /usr/bin/time, which writes its maximum resident set (KiB) to a file
    # named by the rank.
    wrapper = ['sh', '-c', '/usr/bin/time -f %M -o "$0.$OMPI_COMM_WORLD_RANK" "$@"', hwm,
               args.kdgrid, "train"]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    cmd = [args.mpirun, "-np", str(np_)] + wrapper + train_args + [
        "--run-dir", os.path.join(work, name)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-3000:]}")
    peaks = []
    for r in range(np_):
        with open(f"{hwm}.{r}") as f:
            peaks.append(int(f.read().split()[-1]) / 1024.0)
    return peaks, output


def fmt(peaks):
    return " ".join(f"{p:7.1f}" for p in peaks)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kdgrid", default="build/kdgrid")
    ap.add_argument("--mpirun", default="mpirun")
    args = ap.parse_args()
    args.kdgrid = os.path.realpath(args.kdgrid)
    with tempfile.TemporaryDirectory(prefix="kdgrid-memory-bench.") as work:
        data = os.path.join(work, "data")
        write_tokens(data, 1 << 18)

        # --- ZeRO-1: moments dominate (d_model 512, 4 layers, vocab 4096: ~14.7M parameters,
        # 118 MB of moments; one sequence of 32 tokens per rank keeps activations small).
        dp = 4
        model = ["--n-layer", "4", "--n-head", "8", "--d-model", "512", "--d-ff", "2048",
                 "--max-seq", "32"]
        common = ["--data", data, "--steps", "2", "--save-every", "1", "--batch-size", "1",
                  "--dp", str(dp)] + model
        plain, _ = run(args, work, "plain", dp, common + ["--zero", "0"])
        zero, out = run(args, work, "zero", dp, common + ["--zero", "1"])
        found = re.search(r"\((\d+) of (\d+) values per rank\)", out)
        n_params = int(found.group(2))
        moments_mb = 2 * 4 * n_params / 2**20
        expected = moments_mb * (dp - 1) / dp
        measured = sum(plain) / dp - sum(zero) / dp
        print(f"ZeRO-1, mpirun -np {dp} --dp {dp} --save-every 1, {n_params} parameters per "
              f"rank, AdamW moments {moments_mb:.1f} MiB per rank without ZeRO")
        print(f"  peak RSS per rank, MiB, --zero 0: {fmt(plain)}")
        print(f"  peak RSS per rank, MiB, --zero 1: {fmt(zero)}")
        print(f"  expected saving (moments x (dp-1)/dp): {expected:.1f} MiB per rank; measured "
              f"(mean over ranks): {measured:.1f} MiB; worst rank: "
              f"{min(p - z for p, z in zip(plain, zero)):.1f} MiB")
        ok = all(p - z >= expected / 2 for p, z in zip(plain, zero))
        print(f"  every rank saves at least half the expected ({expected / 2:.1f} MiB): "
              f"{'yes' if ok else 'NO'}")

        # --- 1F1B: activations against --grad-accum under --pp 2 (activations dominate:
        # d_model 256, 4 layers, 8 sequences of 256 tokens per micro-batch).
        model = ["--n-layer", "4", "--n-head", "4", "--d-model", "256", "--max-seq", "256"]
        print("1F1B, mpirun -np 2 --pp 2, batch 8 x 256 tokens per micro-batch, d_model 256, "
              "4 layers")
        print("  grad_accum  peak RSS stage 0, stage 1 (MiB)")
        rows = []
        for accum in (1, 2, 4, 8):
            peaks, _ = run(args, work, f"accum{accum}", 2,
                           ["--data", data, "--steps", "2", "--batch-size", "8", "--pp", "2",
                            "--grad-accum", str(accum)] + model)
            rows.append(peaks)
            print(f"  {accum:10d}  {fmt(peaks)}")
        growth = [rows[-1][s] - rows[0][s] for s in range(2)]
        print(f"  growth from grad_accum 1 to 8: stage 0 {growth[0]:.1f} MiB, stage 1 "
              f"{growth[1]:.1f} MiB")


if __name__ == "__main__":
    main()
