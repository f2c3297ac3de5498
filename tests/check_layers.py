#!/usr/bin/env python3
"""Fails on an #include that points up the layer order (DESIGN section 1).

A layer is a top-level folder, except that each subfolder of src/ is a layer of its own.
LAYERS lists them bottom first; a file may include files of its own layer and of layers
listed before it. Every include is spelled from the repository root (the one include root),
so `#include "x.h"` must name an existing file there. With a total order, any cycle needs an
upward edge, so this also rules out cycles. Prints file:line for each violation; exit 1.

  check_layers.py [ROOT]      # default: the repository this script sits in
"""
import os
import re
import sys

LAYERS = [
    "src/core",         # errors, logging, dtypes, MPI session, option helpers
    "kernels",          # op implementations per backend
    "src/tensor",       # tensors, backends, dispatch
    "src/parallel",     # process grid, communicators
    "src/model",        # model families: configuration, parameters, forward/backward
    "src/optim",        # AdamW
    "data",             # HDF5, tokenizer, shards, loader, prepare
    "checkpoints",      # named tensors + metadata on disk; safetensors
    "src/interchange",  # Hugging Face model directories
    "src/inference",    # a model loaded from a checkpoint: evaluate, sample, generate
    "src/train",        # training loop
    "src/distill",      # distillation losses and teachers
    "augment",          # back-translation, perturbation, FGSM
    "src/cli",          # the command line
    "bench",            # benchmarks (may use any layer)
    "tests",            # tests (may use any layer)
]
SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(path):
    parts = path.split("/")
    if parts[0] == "src" and len(parts) > 2:
        return "src/" + parts[1]
    return parts[0]


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    rank = {name: i for i, name in enumerate(LAYERS)}
    problems = []
    checked = 0
    for top in sorted(os.listdir(root)):
        if top.startswith(".") or top.startswith("build") or not os.path.isdir(os.path.join(root, top)):
            continue
        for folder, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for name in sorted(files):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                path = os.path.relpath(os.path.join(folder, name), root)
                layer = layer_of(path)
                if layer not in rank:
                    problems.append(f"{path}: folder '{layer}' is not a layer (add it to LAYERS "
                                    "in tests/check_layers.py and to the README's layout table)")
                    continue
                checked += 1
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                    for line_no, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        where = f"{path}:{line_no}"
                        if not os.path.isfile(os.path.join(root, target)):
                            problems.append(f'{where}: #include "{target}" is not a path from the '
                                            "repository root (the one include root)")
                            continue
                        to = layer_of(target)
                        if to not in rank:
                            problems.append(f'{where}: #include "{target}" is in no layer')
                        elif rank[to] > rank[layer]:
                            problems.append(f'{where}: #include "{target}" points up: {layer} '
                                            f"(layer {rank[layer]}) may not include {to} "
                                            f"(layer {rank[to]})")
    for p in problems:
        print(p)
    print(f"check_layers: {checked} files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
