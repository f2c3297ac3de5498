"""Independent PyTorch check of kdgrid's distillation outputs (tests/test_distill.cpp).

A GPT-2 (DESIGN section 4) is built in float64 from a kdgrid checkpoint's model.h5 with h5py,
and the outputs of two commands are recomputed from scratch:

  distill_torch_reference.py topk CKPT_STEP_DIR TOKEN_DIR TOPK_DIR
      checks every kdgrid-teacher-topk shard of TOPK_DIR: one per token shard, windows of the
      teacher's max_seq with stride max_seq from each shard's start, row i = top-k of
      log_softmax(z / T) of the prediction at token i (ids below the shards' vocab_size).
      Prints "ok N" or exits 1 with the first mismatch.
  distill_torch_reference.py eval STUDENT_STEP_DIR TEACHER_STEP_DIR TOKEN_DIR
      prints {"loss", "kl_to_teacher", "top1_agreement", "tokens"} over eval's windows
      (consecutive windows of max_seq + 1 tokens over the concatenated shards, tail dropped).
  distill_torch_reference.py first_step STUDENT_STEP_DIR TOKEN_DIR TEACHER T DIVERGENCE
      prints {"ce", "kl"}: distillation's loss terms over every training window, TEACHER a
      step directory (online) or topk:DIR (offline, the top-k rows of each input token).
"""
import glob
import json
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.set_grad_enabled(False)
DT = torch.float64


class Gpt2:
    def __init__(self, step_dir):
        with h5py.File(os.path.join(step_dir, "model.h5"), "r") as f:
            g = f["model"]
            self.cfg = {k: int(g.attrs[k]) for k in
                        ("n_layer", "n_head", "d_model", "d_ff", "vocab_size", "max_seq", "attn_window")}
            self.w = {name: torch.tensor(np.asarray(g[name]), dtype=DT) for name in g.keys()}

    def p(self, name):
        return self.w[name]

    def vec(self, name):
        return self.w[name].reshape(-1)

    def forward(self, ids):
        """ids: LongTensor [B, T] -> logits [B, T, V]."""
        c = self.cfg
        B, T = ids.shape
        C, nh = c["d_model"], c["n_head"]
        hd = C // nh
        x = self.p("tok_emb")[ids] + self.p("pos_emb")[:T]
        i = torch.arange(T)
        allowed = i[None, :] <= i[:, None]  # [query, key]
        if c["attn_window"] > 0:
            allowed &= i[None, :] > i[:, None] - c["attn_window"]
        for layer in range(c["n_layer"]):
            b = f"blocks.{layer}."
            h = F.layer_norm(x, (C,), self.vec(b + "ln1.weight"), self.vec(b + "ln1.bias"), 1e-5)
            qkv = h @ self.p(b + "attn.qkv.weight").T + self.vec(b + "attn.qkv.bias")
            q, k, v = qkv.split(C, dim=-1)
            q, k, v = (t.view(B, T, nh, hd).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            att = att.masked_fill(~allowed, float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, C)
            x = x + y @ self.p(b + "attn.out.weight").T + self.vec(b + "attn.out.bias")
            h = F.layer_norm(x, (C,), self.vec(b + "ln2.weight"), self.vec(b + "ln2.bias"), 1e-5)
            h = F.gelu(h @ self.p(b + "mlp.fc1.weight").T + self.vec(b + "mlp.fc1.bias"),
                       approximate="tanh")
            x = x + h @ self.p(b + "mlp.fc2.weight").T + self.vec(b + "mlp.fc2.bias")
        x = F.layer_norm(x, (C,), self.vec("ln_f.weight"), self.vec("ln_f.bias"), 1e-5)
        return x @ self.p("tok_emb").T


def token_shards(token_dir):
    out = []
    for path in sorted(glob.glob(os.path.join(token_dir, "*.h5"))):
        with h5py.File(path, "r") as f:
            if f.attrs["format"] == "kdgrid-tokens":
                out.append((path, np.asarray(f["tokens"], dtype=np.int64), int(f.attrs["vocab_size"])))
    return out


def fail(msg):
    print("MISMATCH: " + msg)
    sys.exit(1)


def check_topk(step_dir, token_dir, topk_dir):
    model = Gpt2(step_dir)
    window = model.cfg["max_seq"]
    topk = {}
    for path in glob.glob(os.path.join(topk_dir, "*.h5")):
        with h5py.File(path, "r") as f:
            if f.attrs["format"] == "kdgrid-teacher-topk":
                topk[f.attrs["token_shard"]] = path
    checked = 0
    for path, tokens, vocab in token_shards(token_dir):
        name = os.path.basename(path)
        if name not in topk:
            fail(f"no top-k shard for {name}")
        with h5py.File(topk[name], "r") as f:
            ids = np.asarray(f["topk/indices"], dtype=np.int64)
            lps = np.asarray(f["topk/logprobs"], dtype=np.float64)
            # fp32 model vs float64 reference, plus half an ulp of the stored type (float16:
            # 2^-11 relative).
            rel = 2.0 ** -11 if f["topk/logprobs"].dtype == np.float16 else 0.0
            k, temp = int(f.attrs["k"]), float(f.attrs["temperature"])
            if ids.shape != (len(tokens), k):
                fail(f"{topk[name]}: shape {ids.shape}, expected {(len(tokens), k)}")
        # The windows of the shard: full ones as one batch, then the shorter tail.
        full = len(tokens) // window * window
        batches = [(0, torch.tensor(tokens[:full]).view(-1, window))] if full else []
        if full < len(tokens):
            batches.append((full, torch.tensor(tokens[full:])[None, :]))
        for begin, chunk in batches:
            logits = model.forward(chunk).reshape(-1, model.cfg["vocab_size"])
            ref = F.log_softmax(logits / temp, -1)[:, :vocab]  # [rows, vocab]
            rows = slice(begin, begin + chunk.numel())
            got = torch.tensor(lps[rows])
            wid = torch.tensor(ids[rows])
            at = ref.gather(1, wid)
            # The stored values are the reference log-probabilities at the stored ids...
            bad = ((got - at).abs() > 2e-5 + rel * at.abs()).any(1).nonzero()
            if len(bad):
                r = int(bad[0])
                fail(f"{name} row {begin + r}: logprobs {got[r].tolist()} vs reference "
                     f"{at[r].tolist()} at ids {wid[r].tolist()}")
            # ...distinct, sorted, and no other id is more likely than the k-th (up to ties).
            distinct = bool((wid.sort(1).values.diff(dim=1) != 0).all()) if k > 1 else True
            if not distinct or bool((got[:, 1:] > got[:, :-1] + 1e-6).any()):
                fail(f"{name} rows {begin}..: ids not distinct and sorted by log-probability")
            kth = torch.topk(ref, k, dim=1).values[:, -1]
            bad = (at.min(1).values < kth - 1e-9).nonzero()
            if len(bad):
                r = int(bad[0])
                fail(f"{name} row {begin + r}: ids {wid[r].tolist()} are not the top {k}")
            checked += chunk.numel()
    print(f"ok {checked}")


def evaluate(student_dir, teacher_dir, token_dir):
    student, teacher = Gpt2(student_dir), Gpt2(teacher_dir)
    T = student.cfg["max_seq"]
    stream = np.concatenate([t for _, t, _ in token_shards(token_dir)])
    windows = len(stream) // (T + 1)
    ce = kl = agree = 0.0
    n = 0
    for w in range(windows):
        win = torch.tensor(stream[w * (T + 1):(w + 1) * (T + 1)])
        inputs, targets = win[:-1][None, :], win[1:]
        ls = F.log_softmax(student.forward(inputs)[0], -1)
        lt = F.log_softmax(teacher.forward(inputs)[0], -1)
        ce += float(-ls.gather(-1, targets[:, None]).sum())
        kl += float(F.kl_div(ls, lt, reduction="sum", log_target=True))
        agree += float((ls.argmax(-1) == lt.argmax(-1)).sum())
        n += T
    print(json.dumps({"loss": ce / n, "kl_to_teacher": kl / n, "top1_agreement": agree / n,
                      "tokens": n}))


def log_renormalised(logp_full, ids):
    """log of p restricted to ids (per row) and renormalised."""
    g = logp_full.gather(-1, ids)
    return g - torch.logsumexp(g, -1, keepdim=True)


def divergence(name, log_t, log_s):
    if name == "forward_kl":
        return F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1)
    if name == "reverse_kl":
        return F.kl_div(log_t, log_s, reduction="none", log_target=True).sum(-1)
    log_m = torch.log(0.5 * (log_t.exp() + log_s.exp()))
    return 0.5 * (F.kl_div(log_m, log_t, reduction="none", log_target=True).sum(-1) +
                  F.kl_div(log_m, log_s, reduction="none", log_target=True).sum(-1))


def first_step(student_dir, token_dir, teacher, temp, name):
    """Mean cross-entropy and divergence over EVERY training window of token_dir (consecutive
    windows of max_seq + 1 tokens over the concatenated shards), i.e. the first step's loss
    when one step's global batch is the whole epoch. teacher: a step directory (online) or
    "topk:DIR" (offline: the shards' rows at each input token's global offset)."""
    student = Gpt2(student_dir)
    T = student.cfg["max_seq"]
    stream = np.concatenate([t for _, t, _ in token_shards(token_dir)])
    windows = len(stream) // (T + 1)
    if teacher.startswith("topk:"):
        topk = {}
        for path in glob.glob(os.path.join(teacher[5:], "*.h5")):
            with h5py.File(path, "r") as f:
                if f.attrs["format"] == "kdgrid-teacher-topk":
                    topk[f.attrs["token_shard"]] = (np.asarray(f["topk/indices"], dtype=np.int64),
                                                    np.asarray(f["topk/logprobs"], np.float64),
                                                    float(f.attrs["temperature"]))
        parts = [topk[os.path.basename(p)] for p, _, _ in token_shards(token_dir)]
        ids = torch.tensor(np.concatenate([p[0] for p in parts]))
        lps = torch.tensor(np.concatenate([p[1] for p in parts]))
        written_temp = parts[0][2]
        model_t = None
    else:
        model_t = Gpt2(teacher)
    seq = torch.tensor(stream[:windows * (T + 1)]).view(windows, T + 1)
    inputs, targets = seq[:, :-1], seq[:, 1:]
    zs = student.forward(inputs).reshape(windows * T, -1)
    ce = float(-F.log_softmax(zs, -1).gather(-1, targets.reshape(-1, 1)).sum())
    ls = F.log_softmax(zs / temp, -1)
    if model_t is None:
        # Row of input position t of window w: global token w * (T + 1) + t.
        rows = (torch.arange(windows)[:, None] * (T + 1) + torch.arange(T)[None, :]).reshape(-1)
        wid = ids[rows]
        # Written as log_softmax(z / T0); over the k ids at temperature T: softmax(lp T0 / T).
        log_t = F.log_softmax(lps[rows] * written_temp / temp, -1)
        log_s = log_renormalised(ls, wid)
    else:
        log_t = F.log_softmax(model_t.forward(inputs).reshape(windows * T, -1) / temp, -1)
        log_s = ls
    kl = float(divergence(name, log_t, log_s).sum())
    n = windows * T
    print(json.dumps({"ce": ce / n, "kl": kl / n, "windows": windows}))


if __name__ == "__main__":
    if sys.argv[1] == "topk":
        check_topk(*sys.argv[2:5])
    elif sys.argv[1] == "eval":
        evaluate(*sys.argv[2:5])
    elif sys.argv[1] == "first_step":
        first_step(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6])
    else:
        fail("unknown mode " + sys.argv[1])
