#!/usr/bin/python3
"""`kdgrid export --format hf` / `kdgrid import --from hf` without transformers (Debian python3,
numpy, h5py): the files themselves, read independently, and the round trip.

1. A tiny model is trained and exported. model.safetensors is parsed here in pure Python (the
   8-byte little-endian length, the JSON header, 8-byte aligned data, tensors tiling the data
   section): every HF GPT-2 tensor is present with its HF shape and equals the checkpoint's
   dataset, transposed exactly for the Conv1D weights ([in, out]); config.json carries the
   contract's values; vocab.json/merges.txt are the kdgrid tokenizer's vocabulary and merges.
2. Importing the export gives back bit-identical tensors, a tokenizer with the same SHA-256 and
   the same `eval` loss; export and import on two ranks give the same files and tensors; the
   same weights rewritten as BF16 and as F16 import as their rounded values; an untied lm_head
   equal to wte is accepted; `train` fine-tunes the import for a step.
3. Refusals, exit 2 naming the file and tensor/key: truncated file, header length beyond the
   file, a shape that does not match its bytes, a tensor of the wrong shape for config.json, a
   missing tensor, an untied lm_head that differs from wte or is absent, GELU without tanh,
   another LayerNorm eps, a missing vocab.json; export of a model with a sliding attention
   window, and with another tokenizer.

usage: hf_files_test.py   (KDGRID_BIN in the environment)
"""
import json
import os
import shutil

import h5py
import numpy as np

import hf_test_util as u
from hf_test_util import k


def check_export(export_dir, step_dir, tok_json):
    attrs, params, _ = u.kdgrid_params(step_dir)
    header, meta, arrays = u.read_safetensors(os.path.join(export_dir, "model.safetensors"))
    k.check(meta.get("format") == "pt", f"__metadata__ {meta}")
    want = {u.hf_name(n)[0] for n in params}
    k.check(set(arrays) == want, f"tensor names differ: {sorted(set(arrays) ^ want)}")
    for name, value in params.items():
        hf, transposed = u.hf_name(name)
        expected = value.T if transposed else value
        if value.ndim == 2 and value.shape[1] == 1:
            expected = value[:, 0]
        k.check(arrays[hf].shape == expected.shape,
                f"{hf}: shape {arrays[hf].shape}, expected {expected.shape}")
        k.check(header[hf]["dtype"] == "F32", f"{hf}: dtype {header[hf]['dtype']}")
        k.check(np.array_equal(arrays[hf], expected), f"{hf} differs from {name}")
    with open(os.path.join(export_dir, "config.json")) as f:
        cfg = json.load(f)
    with open(tok_json) as f:
        tok = json.load(f)
    expect = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
              "n_layer": attrs["n_layer"], "n_head": attrs["n_head"], "n_embd": attrs["d_model"],
              "n_inner": attrs["d_ff"], "n_positions": attrs["max_seq"], "n_ctx": attrs["max_seq"],
              "vocab_size": attrs["vocab_size"], "activation_function": "gelu_new",
              "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True,
              "bos_token_id": tok["eot_token"], "eos_token_id": tok["eot_token"],
              "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
              "attn_pdrop": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0}
    for key, value in expect.items():
        k.check(cfg.get(key) == value, f"config.json {key} = {cfg.get(key)!r}, expected {value!r}")
    with open(os.path.join(export_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    k.check(vocab == {t: i for i, t in enumerate(tok["vocab"])}, "vocab.json differs")
    with open(os.path.join(export_dir, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    k.check(lines[0].startswith("#version") and lines[1:-1] == tok["merges"], "merges.txt differs")
    return arrays


def import_dir(src, work, name, expect=0, needle=None):
    out = os.path.join(work, name)
    r = k.run(["import", "--from", "hf", src, "--out", out, "--tokenizer-out",
               os.path.join(work, name + "_tok.json")], expect=expect, needle=needle)
    return out, r


def variant(src, work, name, edit_config=None, arrays=None, dtype="F32", header_edit=None):
    """A copy of the export directory with config.json edited and/or weights rewritten."""
    dst = os.path.join(work, name)
    shutil.copytree(src, dst)
    if edit_config:
        path = os.path.join(dst, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        edit_config(cfg)
        with open(path, "w") as f:
            json.dump(cfg, f)
    if arrays is not None:
        u.write_safetensors(os.path.join(dst, "model.safetensors"), arrays, dtype, header_edit)
    return dst


def test(work):
    tok, shards = u.build_data(work)
    run_dir = u.train_tiny(work, shards)
    step = k.latest(run_dir)
    export = os.path.join(work, "hf")
    k.run(["export", "--format", "hf", "--checkpoint", run_dir, "--tokenizer", tok, "--out",
           export])
    arrays = check_export(export, step, tok)

    # 2. round trip
    _, params, sha = u.kdgrid_params(step)
    back, _ = import_dir(export, work, "back")
    back_step = k.latest(back)
    _, params_back, sha_back = u.kdgrid_params(back_step)
    k.check(sha_back == sha, f"imported tokenizer_sha256 {sha_back} != {sha}")
    for n, v in params.items():
        k.check(np.array_equal(params_back[n], v), f"round trip changed {n}")
    with open(os.path.join(work, "back_tok.json"), "rb") as f, open(tok, "rb") as g:
        k.check(f.read() == g.read(), "the imported tokenizer JSON differs from the original")
    val = os.path.join(shards, "val")
    a, _ = u.eval_loss(run_dir, val, 256)
    b, err = u.eval_loss(back, val, 256)
    k.check(a == b, f"eval differs after the round trip: {a} vs {b}")
    k.check("warning" not in err, f"eval of the import warned:\n{err}")

    # On two ranks (rank 0 writes; the checkpoint writer is collective) the files are the same.
    export2 = os.path.join(work, "hf_np2")
    k.run(["export", "--format", "hf", "--checkpoint", run_dir, "--tokenizer", tok, "--out",
           export2], np_=2)
    for name in ("model.safetensors", "config.json", "vocab.json", "merges.txt"):
        with open(os.path.join(export, name), "rb") as f:
            with open(os.path.join(export2, name), "rb") as g:
                k.check(f.read() == g.read(), f"{name} differs when exported on 2 ranks")
    back2 = os.path.join(work, "back_np2")
    k.run(["import", "--from", "hf", export, "--out", back2], np_=2)
    _, params_back2, _ = u.kdgrid_params(k.latest(back2))
    for n, v in params.items():
        k.check(np.array_equal(params_back2[n], v), f"import on 2 ranks changed {n}")
    k.run(["import", "--from", "hf", export, "--out", back2], expect=2, needle="--out")

    # train continues from the import (its optimizer state is that of step 0), here in fp16: the
    # run starts from a fresh run's loss scale, not the import's 1 (which would flush most fp16
    # gradients to zero).
    r = k.run(["train", "--run-dir", back, "--data", os.path.join(shards, "train"), "--steps", 1,
               "--batch-size", 2, "--n-layer", 2, "--n-head", 2, "--d-model", 32, "--max-seq", u.T,
               "--precision", "fp16"])
    k.check("resumed from" in r.stderr and "step 0" in r.stderr,
            f"train did not resume:\n{r.stderr}")
    k.check(k.latest(back) == k.step_dir(back, 1), "train from the import did not save step 1")
    scale = k.metrics(back)[0]["loss_scale"]
    k.check(scale >= 1024, f"fp16 fine-tuning of an import ran at loss scale {scale}")

    for dtype in ("BF16", "F16"):
        d = variant(export, work, "hf_" + dtype, arrays=arrays, dtype=dtype)
        out, _ = import_dir(d, work, "imp_" + dtype)
        _, p, _ = u.kdgrid_params(k.latest(out))
        for n, v in params.items():
            want = u.bf16_round(v) if dtype == "BF16" else v.astype(np.float16).astype(np.float32)
            k.check(np.array_equal(p[n], want), f"{dtype} import of {n} is not the rounded value")

    tied = dict(arrays, **{"lm_head.weight": arrays["transformer.wte.weight"]})
    d = variant(export, work, "hf_tied_head", arrays=tied,
                edit_config=lambda c: c.update(tie_word_embeddings=False))
    import_dir(d, work, "imp_tied_head")

    # 3. refusals
    st = "model.safetensors"
    d = variant(export, work, "hf_trunc")
    path = os.path.join(d, st)
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[:-100])
    # The last tensor in the file (ln_f.bias) now runs past its end.
    _, r = import_dir(d, work, "x1", 2, st)
    k.check("transformer.ln_f.bias" in r.stderr, f"truncation message:\n{r.stderr}")
    d = variant(export, work, "hf_badlen")
    with open(os.path.join(d, st), "r+b") as f:
        f.write((len(raw) + 1).to_bytes(8, "little"))
    import_dir(d, work, "x2", 2, "header length")
    d = variant(export, work, "hf_badshape", arrays=arrays, header_edit=lambda h: h[
        "transformer.h.1.mlp.c_fc.bias"].update(shape=[7]))
    import_dir(d, work, "x3", 2, "transformer.h.1.mlp.c_fc.bias")
    wrong = dict(arrays)
    wrong["transformer.h.0.attn.c_attn.weight"] = arrays["transformer.h.0.attn.c_attn.weight"].T
    d = variant(export, work, "hf_transposed", arrays=wrong)
    _, r = import_dir(d, work, "x4", 2, "transformer.h.0.attn.c_attn.weight")
    k.check("expected [32, 96]" in r.stderr, f"shape message:\n{r.stderr}")
    missing = {n: v for n, v in arrays.items() if n != "transformer.ln_f.bias"}
    d = variant(export, work, "hf_missing", arrays=missing)
    import_dir(d, work, "x5", 2, "transformer.ln_f.bias")
    untied = dict(arrays, **{"lm_head.weight": arrays["transformer.wte.weight"] * 1.5})
    d = variant(export, work, "hf_untied", arrays=untied)
    _, r = import_dir(d, work, "x6", 2, "lm_head.weight")
    k.check("untied" in r.stderr, r.stderr)
    d = variant(export, work, "hf_untied_absent",
                edit_config=lambda c: c.update(tie_word_embeddings=False))
    import_dir(d, work, "x6b", 2, "tie_word_embeddings")
    d = variant(export, work, "hf_gelu", edit_config=lambda c: c.update(activation_function="gelu"))
    import_dir(d, work, "x7", 2, "activation_function")
    d = variant(export, work, "hf_eps", edit_config=lambda c: c.update(layer_norm_epsilon=1e-6))
    import_dir(d, work, "x8", 2, "layer_norm_epsilon")
    os.remove(os.path.join(d, "vocab.json"))
    import_dir(d, work, "x9", 2, "vocab.json")

    windowed = u.train_tiny(work, shards, "windowed", ["--attn-window", 4], steps=1)
    r = k.run(["export", "--format", "hf", "--checkpoint", windowed, "--tokenizer", tok, "--out",
               os.path.join(work, "hf_w")], expect=2, needle="attn_window")
    k.check(not os.path.exists(os.path.join(work, "hf_w", "model.safetensors")),
            "a refused export wrote files")
    other_tok = os.path.join(work, "other_tok.json")
    k.run(["tokenizer", "--input", os.path.join(work, "corpus.txt"), "--vocab-size", 300,
           "--out", other_tok])
    k.run(["export", "--format", "hf", "--checkpoint", run_dir, "--tokenizer", other_tok,
           "--out", os.path.join(work, "hf_o")], expect=2, needle="--tokenizer")


if __name__ == "__main__":
    k.main(test)
