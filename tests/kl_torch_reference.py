"""PyTorch reference for tests/test_kernels_kl.cpp: distillation divergences and their gradients
with respect to the student's logits, in float64, written independently of kdgrid's formulas
(torch.nn.functional.kl_div and autograd).

Usage: kl_torch_reference.py IN.json OUT.json
IN: rows, vocab, k, temperature, teacher_scale, student/teacher [rows*vocab] (dense problem),
topk_student [rows*vocab], ids [rows*k], logprobs [rows*k] (top-k problem).
OUT: {"forward_kl"|"reverse_kl"|"jsd"|"topk_<same>": {"loss": [rows], "grad": [rows*vocab]}},
grad = d (sum over rows of the loss) / d student.
"""
import json
import sys

import torch
import torch.nn.functional as F


def divergence(name, log_t, log_s):
    """Per-row D between teacher and student log-probabilities (last dimension)."""
    if name == "forward_kl":  # KL(p_t || p_s): kl_div(input=log q, target=log p) = KL(p || q)
        return F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1)
    if name == "reverse_kl":
        return F.kl_div(log_t, log_s, reduction="none", log_target=True).sum(-1)
    log_m = torch.log(0.5 * (log_t.exp() + log_s.exp()))
    return 0.5 * (F.kl_div(log_m, log_t, reduction="none", log_target=True).sum(-1) +
                  F.kl_div(log_m, log_s, reduction="none", log_target=True).sum(-1))


def main():
    with open(sys.argv[1]) as f:
        p = json.load(f)
    rows, vocab, k = p["rows"], p["vocab"], p["k"]
    temp, scale = p["temperature"], p["teacher_scale"]
    dt = torch.float64
    teacher = torch.tensor(p["teacher"], dtype=dt).view(rows, vocab)
    ids = torch.tensor(p["ids"], dtype=torch.int64).view(rows, k)
    logprobs = torch.tensor(p["logprobs"], dtype=dt).view(rows, k)
    out = {}
    for name in ("forward_kl", "reverse_kl", "jsd"):
        student = torch.tensor(p["student"], dtype=dt).view(rows, vocab).requires_grad_()
        loss = divergence(name, F.log_softmax(teacher / temp, -1), F.log_softmax(student / temp, -1))
        loss.sum().backward()
        out[name] = {"loss": loss.tolist(), "grad": student.grad.flatten().tolist()}

        # Top-k: the student's full-vocabulary log-softmax gathered at the teacher's ids and
        # renormalised; the teacher's log-probabilities rescaled and renormalised.
        student = torch.tensor(p["topk_student"], dtype=dt).view(rows, vocab).requires_grad_()
        gathered = F.log_softmax(student / temp, -1).gather(-1, ids)
        log_s = gathered - torch.logsumexp(gathered, -1, keepdim=True)
        log_t = F.log_softmax(logprobs * scale, -1)
        loss = divergence(name, log_t, log_s)
        loss.sum().backward()
        out["topk_" + name] = {"loss": loss.tolist(), "grad": student.grad.flatten().tolist()}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
