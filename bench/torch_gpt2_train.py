#!/usr/bin/python3
"""PyTorch eager reference for bench/bench_train_vs_torch.sh: trains the same GPT-2 as
`kdgrid train` (DESIGN section 4: pre-LN blocks, causal attention, tanh GELU, learned
positions, tied LM head, biases, no dropout) with the same AdamW hyper-parameters (betas
0.9/0.95, eps 1e-8, weight decay 0.1 on 2-D tensors only, gradient clip 1.0, lr 3e-4), on
random tokens, and prints one JSON line: {"precision", "tokens_per_s" (median over the timed
steps), "step_s" (list), "threads"}.

Run with Debian's interpreter (/usr/bin/python3, torch 1.13). Attention is the usual eager
form (scores, mask, softmax, product): torch 1.13 has no fused scaled_dot_product_attention.
bf16 uses torch.autocast(device_type="cpu", dtype=torch.bfloat16) around forward and loss,
with fp32 master weights and optimizer state, as kdgrid's --precision bf16.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d_model, n_head, d_ff):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d_model, eps=1e-5)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model, eps=1e-5)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)

    def forward(self, x, mask):
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(mask[:T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.out(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, vocab, seq, n_layer, d_model, n_head, d_ff):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(seq, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head, d_ff) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model, eps=1e-5)
        # True above the diagonal: the keys a query may not see.
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1))
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("out.weight", "fc2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif "ln" in name and name.endswith("weight"):
                nn.init.ones_(p)
            else:
                nn.init.zeros_(p)

    def forward(self, ids, targets):
        T = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(T, device=ids.device))
        for b in self.blocks:
            x = b(x, self.mask)
        logits = F.linear(self.ln_f(x), self.tok.weight)  # tied LM head
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Gpt2(args.vocab, args.seq, args.n_layer, args.d_model, args.n_head, args.d_ff)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    total = args.warmup + args.steps
    data = torch.randint(0, args.vocab, (total, args.batch, args.seq + 1))
    times = []
    for step in range(total):
        t0 = time.perf_counter()
        ids, targets = data[step, :, :-1].contiguous(), data[step, :, 1:].contiguous()
        opt.zero_grad(set_to_none=True)
        if args.precision == "bf16":
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                loss = model(ids, targets)
        else:
            loss = model(ids, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    tokens = args.batch * args.seq
    print(json.dumps({"precision": args.precision, "threads": args.threads,
                      "tokens_per_s": statistics.median(tokens / t for t in times),
                      "step_s": [round(t, 4) for t in times], "loss": loss.item()}))


if __name__ == "__main__":
    main()
