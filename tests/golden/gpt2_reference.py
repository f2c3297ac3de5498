#!/usr/bin/python3
"""Independent GPT-2 reference for kdgrid's golden test, written from DESIGN sections 4 and 5
only (Debian's python3-torch, CPU).

It rebuilds the model from a kdgrid `model.h5` (one dataset per parameter under /model, linear
weights [out, in], qkv rows = all Q, then all K, then all V; LM head tied to tok_emb;
pre-LayerNorm blocks, eps 1e-5; GELU with the tanh approximation; causal attention scaled by
1/sqrt(head_dim) with an optional window W: query t sees keys t-W+1..t), then, in float64 AND
in float32:
  1. for the windows /grad_windows [B, T+1] of WINDOWS_H5 (inputs = first T tokens, targets
     = the next token at each position): logits [B, T, V], the mean cross-entropy (nats) and
     the gradient of that mean with respect to every parameter;
  2. when /train_windows [S, G, T+1] is present: S optimizer steps as `kdgrid train` takes
     them (step s trains on the G windows train_windows[s]): mean cross-entropy, global
     gradient norm, clipping to --grad-clip, learning rate from the schedule of DESIGN
     section 2 (linear warmup, then cosine to --min-lr at --steps), and torch.optim.AdamW
     (betas 0.9/0.95, eps 1e-8, decoupled weight decay on 2-D tensors only); records each
     step's loss, gradient norm and rate and the parameters after the last step.

usage: gpt2_reference.py --model MODEL_H5 --windows WINDOWS_H5 --out REF_H5
           [--lr 3e-4] [--min-lr -1] [--warmup-steps 0] [--steps S] [--weight-decay 0.1]
           [--grad-clip 1.0]

REF_H5 layout, for TAG in f64, f32 (values in that precision):
  /TAG/logits [B, T, V], /TAG/loss [1], /TAG/grads/NAME (the parameter's shape),
  /TAG/train/loss [S], /TAG/train/grad_norm [S], /TAG/train/lr [S], /TAG/train/final/NAME
"""
import argparse
import math

import h5py
import numpy as np
import torch
import torch.nn.functional as F

LN_EPS = 1e-5
MODEL_ATTRS = ("n_layer", "n_head", "d_model", "d_ff", "vocab_size", "max_seq", "attn_window")


def load_model(path):
    """Returns (config dict, {name: float32 numpy array}) from a kdgrid model.h5."""
    with h5py.File(path, "r") as f:
        group = f["model"]
        config = {k: int(group.attrs[k]) for k in MODEL_ATTRS}
        params = {name: np.asarray(ds, dtype=np.float32) for name, ds in group.items()}
    return config, params


def layer_norm(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps=LN_EPS)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def linear(x, p, name):
    return x @ p[name + ".weight"].t() + p[name + ".bias"]


def attention_mask(T, window):
    """[T, T] boolean, True where query t may attend key j: j <= t, and j > t - W when W > 0."""
    t = torch.arange(T).unsqueeze(1)
    j = torch.arange(T).unsqueeze(0)
    allowed = j <= t
    if window > 0:
        allowed &= j > t - window
    return allowed


def forward(p, cfg, ids):
    """Logits [B, T, V] of ids [B, T] (int64)."""
    B, T = ids.shape
    C, nh = cfg["d_model"], cfg["n_head"]
    hd = C // nh
    x = p["tok_emb"][ids] + p["pos_emb"][:T]
    mask = attention_mask(T, cfg["attn_window"])
    for i in range(cfg["n_layer"]):
        b = f"blocks.{i}."
        h = layer_norm(x, p[b + "ln1.weight"], p[b + "ln1.bias"])
        qkv = linear(h, p, b + "attn.qkv")  # [B, T, 3C]: Q block, K block, V block
        q, k, v = (qkv[..., n * C:(n + 1) * C].reshape(B, T, nh, hd).transpose(1, 2)
                   for n in range(3))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # [B, nh, T, T]
        scores = scores.masked_fill(~mask, float("-inf"))
        att = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + linear(att, p, b + "attn.out")
        h = layer_norm(x, p[b + "ln2.weight"], p[b + "ln2.bias"])
        x = x + linear(gelu_tanh(linear(h, p, b + "mlp.fc1")), p, b + "mlp.fc2")
    x = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"])
    return x @ p["tok_emb"].t()  # tied LM head


def mean_cross_entropy(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def split_windows(windows):
    """[B, T+1] uint32 numpy -> (inputs [B, T], targets [B, T]) int64 tensors."""
    w = torch.from_numpy(np.asarray(windows, dtype=np.int64))
    return w[:, :-1], w[:, 1:]


def learning_rate(step, lr, min_lr, warmup, steps):
    """DESIGN section 2's schedule at 0-based optimizer step `step`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    decay = steps - warmup
    progress = min(1.0, (step - warmup) / decay) if decay > 0 else 1.0
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def to_torch(params, dtype):
    return {n: torch.tensor(v, dtype=dtype, requires_grad=True) for n, v in params.items()}


def gradients(params, cfg, windows, dtype):
    p = to_torch(params, dtype)
    inputs, targets = split_windows(windows)
    logits = forward(p, cfg, inputs)
    loss = mean_cross_entropy(logits, targets)
    loss.backward()
    return (logits.detach().numpy(), loss.item(),
            {n: t.grad.numpy() for n, t in p.items()})


def train(params, cfg, train_windows, args, dtype):
    p = to_torch(params, dtype)
    decay = [t for t in p.values() if t.dim() == 2]  # weights and embeddings
    no_decay = [t for t in p.values() if t.dim() != 2]  # biases and LayerNorm
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    min_lr = args.min_lr if args.min_lr >= 0 else args.lr / 10
    losses, norms, lrs = [], [], []
    for step, windows in enumerate(train_windows):
        inputs, targets = split_windows(windows)
        opt.zero_grad(set_to_none=True)
        loss = mean_cross_entropy(forward(p, cfg, inputs), targets)
        loss.backward()
        norm = torch.sqrt(sum((t.grad ** 2).sum() for t in p.values())).item()
        if args.grad_clip > 0 and norm > args.grad_clip:
            for t in p.values():
                t.grad.mul_(args.grad_clip / norm)
        lr = learning_rate(step, args.lr, min_lr, args.warmup_steps, args.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        losses.append(loss.item())
        norms.append(norm)
        lrs.append(lr)
    return losses, norms, lrs, {n: t.detach().numpy() for n, t in p.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--windows", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--min-lr", type=float, default=-1.0)
    ap.add_argument("--warmup-steps", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0, help="the schedule's total steps")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    args = ap.parse_args()

    torch.set_num_threads(1)
    cfg, params = load_model(args.model)
    with h5py.File(args.windows, "r") as f:
        grad_windows = np.asarray(f["grad_windows"])
        train_windows = np.asarray(f["train_windows"]) if "train_windows" in f else None
    if train_windows is not None and args.steps < len(train_windows):
        ap.error("--steps is smaller than the number of training steps in --windows")

    with h5py.File(args.out, "w") as out:
        for tag, dtype in (("f64", torch.float64), ("f32", torch.float32)):
            g = out.create_group(tag)
            logits, loss, grads = gradients(params, cfg, grad_windows, dtype)
            g["logits"] = logits
            g["loss"] = np.array([loss])
            for name, value in grads.items():
                g["grads/" + name] = value
            if train_windows is None:
                continue
            losses, norms, lrs, final = train(params, cfg, train_windows, args, dtype)
            g["train/loss"] = np.array(losses)
            g["train/grad_norm"] = np.array(norms)
            g["train/lr"] = np.array(lrs)
            for name, value in final.items():
                g["train/final/" + name] = value


if __name__ == "__main__":
    main()
