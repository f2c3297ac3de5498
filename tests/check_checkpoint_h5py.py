#!/usr/bin/python3
"""Reads a kdgrid checkpoint with h5py and checks the DESIGN section 5 contract: attribute
names and values, dataset names, shapes and dtypes (derived here from the /model attributes,
independently of kdgrid), and every dataset's checksum recomputed with numpy from the
algorithm as the README states it.

usage: check_checkpoint_h5py.py STEP_DIR GRID   (GRID as written at save time, e.g. "1,2,2")
"""
import os
import sys

import h5py
import numpy as np

MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def fmix64(k):
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xFF51AFD7ED558CCD)
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xC4CEB9FE1A85EC53)
    return k ^ (k >> np.uint64(33))


def checksum(values):
    """sum mod 2^64 over row-major index i of fmix64(fmix64(i + 0x9e3779b97f4a7c15) ^ bits(x_i))"""
    bits = np.ascontiguousarray(values, dtype=np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    index = np.arange(bits.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        terms = fmix64(fmix64(index + np.uint64(0x9E3779B97F4A7C15)) ^ bits)
        return int(np.sum(terms, dtype=np.uint64))


def expected_shapes(m):
    C, F, V, T, L = m["d_model"], m["d_ff"], m["vocab_size"], m["max_seq"], m["n_layer"]
    shapes = {"tok_emb": (V, C), "pos_emb": (T, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(L):
        b = f"blocks.{i}."
        shapes.update({
            b + "ln1.weight": (C,), b + "ln1.bias": (C,),
            b + "attn.qkv.weight": (3 * C, C), b + "attn.qkv.bias": (3 * C,),
            b + "attn.out.weight": (C, C), b + "attn.out.bias": (C,),
            b + "ln2.weight": (C,), b + "ln2.bias": (C,),
            b + "mlp.fc1.weight": (F, C), b + "mlp.fc1.bias": (F,),
            b + "mlp.fc2.weight": (C, F), b + "mlp.fc2.bias": (C,),
        })
    return shapes


def check_tensors(group, shapes, where):
    names = set(group.keys())
    assert names == set(shapes), f"{where}: datasets {sorted(names ^ set(shapes))} differ from the contract"
    for name, shape in shapes.items():
        ds = group[name]
        assert ds.dtype == np.float32, f"{where}/{name}: dtype {ds.dtype}"
        assert ds.shape == shape, f"{where}/{name}: shape {ds.shape}, expected {shape}"
        stored = ds.attrs["checksum"]
        assert stored.dtype == np.uint64, f"{where}/{name}: checksum dtype {stored.dtype}"
        got = checksum(ds[...])
        assert int(stored) == got, f"{where}/{name}: checksum {int(stored):#x} != recomputed {got:#x}"


def main():
    step_dir, grid = sys.argv[1], sys.argv[2]
    with h5py.File(os.path.join(step_dir, "model.h5"), "r") as f:
        a = f.attrs
        assert a["format"] == "kdgrid-checkpoint", a["format"]
        assert int(a["format_version"]) == 1
        assert a["grid"] == grid, (a["grid"], grid)
        for key in ("step", "tokens_seen"):
            assert int(a[key]) >= 0
        for key in ("config", "tokenizer_sha256", "checksum_algorithm"):
            assert isinstance(a[key], str), key
        assert a["checksum_algorithm"].startswith("kdgrid-fmix64-sum-v1")
        m = f["model"].attrs
        assert m["architecture"] == "gpt2"
        model = {k: int(m[k]) for k in ("n_layer", "n_head", "d_model", "d_ff", "vocab_size",
                                         "max_seq", "attn_window")}
        shapes = expected_shapes(model)
        check_tensors(f["model"], shapes, "model.h5:/model")
        step = int(a["step"])
    with h5py.File(os.path.join(step_dir, "optimizer.h5"), "r") as f:
        a = f.attrs
        assert a["format"] == "kdgrid-checkpoint" and int(a["format_version"]) == 1
        assert int(a["step"]) == step
        for key in ("tokens_seen", "loss_scale", "good_steps", "best_val_loss", "cursor_epoch",
                    "cursor_position"):
            assert key in a, f"optimizer.h5: attribute {key} missing"
        assert a["cursor_epoch"].dtype == np.uint64 and a["cursor_position"].dtype == np.uint64
        check_tensors(f["m"], shapes, "optimizer.h5:/m")
        check_tensors(f["v"], shapes, "optimizer.h5:/v")
    print(f"checkpoint contract OK: {len(shapes)} tensors, model {model}")


if __name__ == "__main__":
    main()
