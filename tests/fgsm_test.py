#!/usr/bin/python3
"""`kdgrid augment --method fgsm` end to end, checked with h5py (DESIGN sections 2 and 6).

A tiny model is trained on token shards written here (three shards, several documents each,
windows running across shard boundaries). fgsm over those shards must: write one output shard
per input shard, under its name (a shard holding no window start gives one without documents,
and eval over the output reads past it); hold exactly eval's windows of the
input (source_token_offset 0, W, 2W, ... in order), each whole as one document, with at most
--max-flips tokens changed (never the last) and some changed overall; map each window to the
input document holding its first token (source_doc, counted across shards); carry method code 2
with the codes attribute and the root attributes epsilon, max_flips, seed, checkpoint; write
/fgsm/deltas in {-E, 0, E} (0 on each window's last token) with --save-deltas; give the same
bytes on 1 and 3 ranks; and make `kdgrid eval` score a higher loss on the output than on the
input over the same number of target tokens. Bad options, a taken --out and shards of another
tokenizer exit 2 naming the option or file.

usage: fgsm_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import json
import os

import h5py
import numpy as np

import kdgrid_cli_util as k

VOCAB = 64
MAX_SEQ = 16
W = MAX_SEQ + 1
EPS = 0.5
FLIPS = 3
# Shard sizes: the middle one is shorter than a window, and no window starts in it (windows
# start at multiples of 17: 221 lies in part_00, 238 in part_02 = [235, 536)), so its output
# shard has no documents.
SIZES = [230, 5, 301]


def make_tokens(n, seed):
    """A learnable stream: a fixed cycle of 20 ids with 10% noise."""
    rng = np.random.default_rng(seed)
    base = (np.arange(n) * 7 + seed) % 20
    noise = rng.integers(0, VOCAB, n)
    return np.where(rng.random(n) < 0.1, noise, base)


def write_input(d, sha=k.SHA):
    streams = []
    for i, n in enumerate(SIZES):
        tokens = make_tokens(n, i)
        cuts = sorted({0, n} | set(int(c) for c in np.linspace(0, n, 4)[1:-1]))
        k.write_token_shard(os.path.join(d, f"part_{i:02d}.h5"), tokens, VOCAB, sha=sha,
                            doc_offsets=cuts)
        streams.append((tokens, cuts))
    return streams


def eval_json(ckpt, data):
    out = k.run(["eval", "--checkpoint", ckpt, "--data", data]).stdout
    return json.loads(out.strip().splitlines()[-1])


def test(work):
    data = os.path.join(work, "in")
    streams = write_input(data)
    run_dir = os.path.join(work, "run")
    k.run(["train", "--data", data, "--run-dir", run_dir, "--steps", 30, "--n-layer", 2,
           "--n-head", 2, "--d-model", 32, "--max-seq", MAX_SEQ, "--batch-size", 4,
           "--lr", 3e-3])
    ckpt = k.latest(run_dir)

    out1 = os.path.join(work, "fgsm1")
    fgsm = ["augment", "--method", "fgsm", "--input", data, "--checkpoint", run_dir,
            "--epsilon", EPS, "--max-flips", FLIPS, "--seed", 7, "--save-deltas"]
    log = k.run(fgsm + ["--out", out1]).stdout
    k.check("sequences/s" in log, f"fgsm printed no throughput:\n{log}")

    # Which input shards hold a window start (eval's windows over the concatenated stream).
    stream = np.concatenate([t for t, _ in streams])
    n_windows = len(stream) // W
    starts = np.cumsum([0] + SIZES)
    doc_starts = []  # global start of each input document, and its global index
    for i, (_, cuts) in enumerate(streams):
        doc_starts += [starts[i] + c for c in cuts[:-1]]
    expected_names = [f"part_{i:02d}.h5" for i in range(len(SIZES))]
    names = sorted(f for f in os.listdir(out1))
    k.check(names == expected_names, f"output shards {names}, expected {expected_names}")
    empty = [f"part_{i:02d}.h5" for i in range(len(SIZES))
             if not any(starts[i] <= w * W < starts[i + 1] for w in range(n_windows))]
    k.check(empty == ["part_01.h5"], f"shards without a window start: {empty}")

    offsets, total_flips = [], 0
    all_tokens = []
    for name in names:
        path = os.path.join(out1, name)
        with h5py.File(path, "r") as f:
            k.check(f.attrs["format"] == "kdgrid-tokens", f"{name}: format")
            for attr in ("vocab_size", "eot_token", "tokenizer_sha256"):
                src = k.root_attrs(os.path.join(data, name))[attr]
                k.check(f.attrs[attr] == src, f"{name}: {attr} not copied from the input")
            for attr, want in (("epsilon", EPS), ("max_flips", FLIPS), ("seed", 7)):
                k.check(float(f.attrs[attr]) == want, f"{name}: attribute {attr}")
            k.check(os.path.samefile(f.attrs["checkpoint"], ckpt), f"{name}: checkpoint attribute")
            tokens = f["tokens"][()].astype(np.int64)
            docs = f["doc_offsets"][()]
            prov = f["provenance"]
            sto = prov["source_token_offset"][()]
            sdoc = prov["source_doc"][()]
            method = prov["method"][()]
            k.check(prov["method"].attrs["codes"] == "0=backtranslate,1=perturb,2=fgsm",
                    f"{name}: method codes")
            deltas = f["fgsm/deltas"][()]
        n = len(sto)
        k.check(sto.dtype == np.int64 and sdoc.dtype == np.int64, f"{name}: provenance dtypes")
        k.check(list(docs) == [i * W for i in range(n + 1)] and len(tokens) == n * W,
                f"{name}: each window must be one whole document")
        k.check((method == 2).all(), f"{name}: method codes {method}")
        k.check(deltas.dtype == np.float16 and deltas.shape == (n * W, 32),
                f"{name}: deltas {deltas.dtype} {deltas.shape}")
        k.check((n == 0) == (name in empty), f"{name}: {n} windows")
        vals = set(np.unique(deltas).astype(np.float32).tolist())
        k.check(n == 0 or (vals <= {-EPS, 0.0, EPS} and len(vals) > 1),
                f"{name}: delta values {vals}")
        for j in range(n):
            window = tokens[j * W:(j + 1) * W]
            source = stream[sto[j]:sto[j] + W]
            flips = int((window != source).sum())
            k.check(flips <= FLIPS, f"{name} window {j}: {flips} flips > --max-flips {FLIPS}")
            k.check(window[-1] == source[-1], f"{name} window {j}: the last token flipped")
            k.check(not deltas[(j + 1) * W - 1].any(), f"{name} window {j}: last delta not 0")
            total_flips += flips
            want_doc = int(np.searchsorted(doc_starts, sto[j], side="right")) - 1
            k.check(sdoc[j] == want_doc,
                    f"{name} window {j}: source_doc {sdoc[j]}, want {want_doc}")
        offsets += list(sto)
        all_tokens.append(tokens)
    k.check(offsets == [w * W for w in range(n_windows)],
            f"windows {offsets[:5]}... are not eval's {n_windows} windows in order")
    k.check(total_flips > 0, "fgsm changed no token at all")

    clean, adv = eval_json(run_dir, data), eval_json(run_dir, out1)
    k.check(clean["tokens"] == adv["tokens"] == n_windows * MAX_SEQ,
            f"eval scored {clean['tokens']} vs {adv['tokens']} tokens, want {n_windows * MAX_SEQ}")
    k.check(adv["loss"] > clean["loss"],
            f"fgsm windows do not raise eval's loss: {adv['loss']} vs {clean['loss']}")

    # 3 ranks: the same bytes (whole shards per rank; the model runs whole on each).
    out3 = os.path.join(work, "fgsm3")
    k.run(fgsm + ["--out", out3], np_=3)
    k.check(sorted(os.listdir(out3)) == names, f"3 ranks wrote {sorted(os.listdir(out3))}")
    for name in names:
        k.assert_same_datasets(os.path.join(out1, name), os.path.join(out3, name),
                               f"{name} on 1 vs 3 ranks")

    # Usage errors: exit 2 naming the option or file; nothing written.
    bad = os.path.join(work, "bad")
    base = ["augment", "--method", "fgsm", "--input", data, "--out", bad]
    k.run(base, expect=2, needle="--checkpoint")
    k.run(base + ["--checkpoint", run_dir, "--epsilon", 0], expect=2, needle="--epsilon")
    k.run(base + ["--checkpoint", run_dir, "--max-flips", 0], expect=2, needle="--max-flips")
    k.run(base + ["--checkpoint", run_dir, "--eda-sr", 0.1], expect=2, needle="--eda-sr")
    k.run(["augment", "--method", "perturb", "--input", data, "--out", bad, "--checkpoint",
           run_dir], expect=2, needle="--checkpoint")
    missing = os.path.join(work, "nothing")
    k.run(base + ["--checkpoint", missing], expect=2, needle=missing)
    k.run(fgsm + ["--out", out1], expect=2, needle="--out")
    other = os.path.join(work, "other")
    write_input(other, sha="ab" * 32)
    k.run(["augment", "--method", "fgsm", "--input", other, "--out", bad, "--checkpoint",
           run_dir], np_=2, expect=2, needle="tokenizer")
    k.check(not os.path.exists(bad) or not any(f.endswith(".h5") for f in os.listdir(bad)),
            "a failed fgsm run left shards")


if __name__ == "__main__":
    k.main(test)
