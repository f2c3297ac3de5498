"""kdgrid <-> transformers 4.30 (GPT2LMHeadModel, GPT2TokenizerFast), run with the venv of
tests/hf/venv.sh (Debian's torch 1.13 underneath).

`export`: a tiny model trained by kdgrid is exported and loaded with from_pretrained.
  - GPT2TokenizerFast encodes every document of the prepared corpus (random-word documents
    plus samples with unicode letters, emoji, digits, runs of spaces/tabs/newlines,
    contractions) to exactly the ids kdgrid's tokenizer wrote into the token shards.
  - Its fp32 logits on eval's validation windows equal the independent float64 reference
    (tests/golden/gpt2_reference.py on the checkpoint's model.h5) within LOGIT_RTOL, and its
    mean cross-entropy equals `kdgrid eval`'s loss within 1e-5 relative.
  - Greedy generation from a prompt gives the same text as `kdgrid generate --temperature 0`.
`import`: transformers creates a random GPT2LMHeadModel (n_inner not 4*n_embd, 3 heads,
  weights scaled up so the logits are far from uniform and any mapping error shows) with
  tokenizer files that transformers itself writes from the kdgrid tokenizer's vocabulary, and
  save_pretrained(safe_serialization=True). After `kdgrid import`:
  - the kdgrid tokenizer written is byte-identical to the original (same SHA-256 as the
    shards, so eval does not warn and distill's teacher/student check passes);
  - `kdgrid eval`'s loss equals transformers' loss on the same windows within 1e-5 relative,
    the reference logits of the imported model.h5 equal transformers' within LOGIT_RTOL;
  - greedy `kdgrid generate` equals transformers' greedy generate;
  - the import serves as `distill --teacher` for one step of a tiny student.

Tolerances: both sides compute in fp32 with different summation orders (oneDNN vs PyTorch's
GEMMs, d_model <= 48), so transformers' logits differ from the float64 reference by a few fp32
ulps of the largest logit; LOGIT_RTOL (5e-6 of the largest |logit|, ~40 ulps) leaves room for
that while a transposed or misplaced tensor, another LayerNorm eps (1e-6 instead of 1e-5) or
exact GELU instead of the tanh form (the smallest of these effects, a few 1e-5 of the largest
logit on these models) fails it. The mean cross-entropy is a coarser check of the binary's own
`eval` (LOSS_RTOL 1e-5; fp32 sums over <= 256 targets agree to ~1e-7).

usage: python hf_transformers_test.py export|import   (KDGRID_BIN in the environment)
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

import hf_test_util as u
from hf_test_util import k

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
import gpt2_reference as ref  # noqa: E402

LOGIT_RTOL = 5e-6  # of the largest |logit|
LOSS_RTOL = 1e-5
MAX_TOKENS = 256
PROMPT = "The model and the"


def hf_logits_and_loss(model, w):
    inputs, targets = ref.split_windows(w)
    with torch.no_grad():
        logits = model(inputs).logits  # [n, T, V] fp32
        ce = torch.nn.functional.cross_entropy(
            logits.double().reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return logits, float(ce)


def reference_logits(step_dir, w):
    cfg, params = ref.load_model(u.model_h5(step_dir))
    p = {n: torch.tensor(v, dtype=torch.float64) for n, v in params.items()}
    inputs, _ = ref.split_windows(w)
    with torch.no_grad():
        return ref.forward(p, cfg, inputs)


def compare_model(model, checkpoint, step_dir, val, what):
    w = u.windows(u.stream(val), MAX_TOKENS)
    k.check(len(w) >= 4, f"only {len(w)} validation windows")
    logits, loss = hf_logits_and_loss(model, w)
    want = reference_logits(step_dir, w)
    diff = float((logits.double() - want).abs().max())
    scale = float(want.abs().max())
    k.check(diff <= LOGIT_RTOL * scale, f"{what}: transformers' logits differ from the reference "
                                        f"by {diff} (largest |logit| {scale})")
    spread = float(want.std(dim=-1).mean())
    k.check(spread > 0.3, f"{what}: logits nearly constant (std {spread:.3f}), the test would be "
                          "blind")
    line, err = u.eval_loss(checkpoint, val, MAX_TOKENS)
    k.check(line["tokens"] == w.size - len(w), f"eval scored {line['tokens']} tokens")
    rel = abs(line["loss"] - loss) / loss
    k.check(rel <= LOSS_RTOL, f"{what}: kdgrid eval loss {line['loss']} vs transformers {loss} "
                              f"(relative {rel:.2e})")
    k.check("warning" not in err, f"{what}: eval warned:\n{err}")
    print(f"{what}: logit std {spread:.2f}, max |logit| {scale:.2f}, max |diff| {diff:.2e}, "
          f"loss {loss:.6f} vs {line['loss']:.6f} "
          f"(rel {rel:.1e})")


def gpt2_byte_to_unicode():
    """GPT-2's byte -> printable character table (the form of vocab.json and merges.txt)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
                 list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def compare_generate(model, tokenizer, checkpoint, tok_json, eot):
    new = 12
    r = subprocess.run(k.command(["generate", "--checkpoint", checkpoint, "--tokenizer", tok_json,
                                  "--prompt", PROMPT, "--temperature", 0, "--max-new-tokens", new]),
                       capture_output=True)
    k.check(r.returncode == 0,
            f"generate exited {r.returncode}:\n{r.stderr.decode(errors='replace')}")
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=new, do_sample=False, eos_token_id=eot,
                             pad_token_id=eot)[0].tolist()
    if eot in out:
        out = out[:out.index(eot)]
    # Bytes, not text: a random model may well stop inside a UTF-8 sequence.
    decoder = {c: b for b, c in gpt2_byte_to_unicode().items()}
    text = b"".join(bytes(decoder[c] for c in t) for t in tokenizer.convert_ids_to_tokens(out))
    k.check(r.stdout == text + b"\n", f"greedy generation differs:\nkdgrid:       {r.stdout!r}\n"
                                      f"transformers: {text!r}")


def test_export(work):
    tok, shards = u.build_data(work)
    run_dir = u.train_tiny(work, shards, steps=40, lr=1e-2)
    export = os.path.join(work, "hf")
    k.run(["export", "--format", "hf", "--checkpoint", run_dir, "--tokenizer", tok, "--out",
           export])
    model = GPT2LMHeadModel.from_pretrained(export).eval()
    tokenizer = GPT2TokenizerFast.from_pretrained(export)
    with open(tok) as f:
        eot = json.load(f)["eot_token"]
    k.check(tokenizer.eos_token_id == eot and model.config.eos_token_id == eot, "eos id")

    docs = u.documents(os.path.join(shards, "train")) + u.documents(os.path.join(shards, "val"))
    texts = "".join(t for t, _ in docs)
    for s in ("東京", "🙂", "\t\t", "   \n"):
        k.check(s in texts, f"corpus lacks {s!r}: the tokenizer comparison would not cover it")
    for text, ids in docs:
        got = tokenizer(text)["input_ids"]
        k.check(got == ids, f"GPT2TokenizerFast({text!r}) = {got}, kdgrid wrote {ids}")
    print(f"tokenizer: {len(docs)} documents encode identically")

    compare_model(model, run_dir, k.latest(run_dir), os.path.join(shards, "val"), "export")
    compare_generate(model, tokenizer, run_dir, tok, eot)


def test_import(work):
    tok, shards = u.build_data(work)
    with open(tok) as f:
        tj = json.load(f)
    # GPT-2 files of the kdgrid vocabulary, written here; transformers then writes its own.
    plain = os.path.join(work, "gpt2_files")
    os.makedirs(plain)
    with open(os.path.join(plain, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(tj["vocab"])}, f, ensure_ascii=False)
    with open(os.path.join(plain, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(m + "\n" for m in tj["merges"]))
    tokenizer = GPT2TokenizerFast(vocab_file=os.path.join(plain, "vocab.json"),
                                  merges_file=os.path.join(plain, "merges.txt"))
    eot = tj["eot_token"]
    k.check(tokenizer.eos_token_id == eot, "transformers does not see <|endoftext|> as eos")

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=u.VOCAB, n_positions=u.T, n_embd=48, n_layer=2, n_head=3,
                     n_inner=100, bos_token_id=eot, eos_token_id=eot)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    hf_dir = os.path.join(work, "hf")
    model.save_pretrained(hf_dir, safe_serialization=True)
    tokenizer.save_pretrained(hf_dir)
    k.check(os.path.exists(os.path.join(hf_dir, "model.safetensors")) and
            not os.path.exists(os.path.join(hf_dir, "pytorch_model.bin")), "not safetensors")

    run_dir = os.path.join(work, "imported")
    tok_out = os.path.join(work, "imported_tok.json")
    k.run(["import", "--from", "hf", hf_dir, "--out", run_dir, "--tokenizer-out", tok_out])
    with open(tok_out, "rb") as f, open(tok, "rb") as g:
        k.check(f.read() == g.read(), "the imported tokenizer differs from the kdgrid original")
    _, _, sha = u.kdgrid_params(k.latest(run_dir))
    shard_sha = k.root_attrs(u.token_shards(os.path.join(shards, "val"))[0])["tokenizer_sha256"]
    shard_sha = shard_sha.decode() if isinstance(shard_sha, bytes) else str(shard_sha)
    k.check(sha == shard_sha, f"checkpoint tokenizer_sha256 {sha} != shards' {shard_sha}")

    compare_model(model, run_dir, k.latest(run_dir), os.path.join(shards, "val"), "import")
    compare_generate(model, tokenizer, run_dir, tok_out, eot)
    k.run(["distill", "--teacher", run_dir, "--data", os.path.join(shards, "train"), "--run-dir",
           os.path.join(work, "student"), "--n-layer", 1, "--n-head", 2, "--d-model", 32,
           "--max-seq", u.T, "--steps", 1, "--batch-size", 2])
    k.check(len(k.metrics(os.path.join(work, "student"))) == 1, "distill did not take its step")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("export", "import"):
        print("usage: hf_transformers_test.py export|import")
        sys.exit(2)
    k.main(test_export if mode == "export" else test_import)
