"""Shared set-up of the Hugging Face interchange tests: a small deterministic corpus (with
unicode and whitespace-run documents), a kdgrid tokenizer, token shards, a tiny trained model,
the safetensors format read in pure Python + numpy, and eval's windows (DESIGN section 2).
Runs under Debian's python3 and under the transformers venv (which sees the same packages)."""
import glob
import json
import os
import random
import struct
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kdgrid_cli_util as k  # noqa: E402

T = 32          # max_seq of the tiny models
VOCAB = 420     # tokenizer size (256 bytes + merges + end-of-text)

# Documents whose tokenization the tests compare with transformers': unicode letters, digits,
# marks and emoji, runs of spaces and tabs, contractions, leading/trailing whitespace, and
# newline runs inside a document (prepare splits only at blank lines).
SAMPLES = [
    "Hello world! It's a test, isn't it? We'll see; they'd say I'm right.",
    "naïve café — Ünïcödé: 東京 12345 ß αβγ 🙂🚀 x²",
    "spaces:   three,\t\ttabs,    \t mixed  ",
    "  leading spaces and trailing newline run\n \n   \nend",
    "numbers 3.14159 and 2,718 and 1e-5; symbols #@!$%^&*()[]{}",
]

WORDS = ("the of and to in is was for on that with as by at from it an be this which or are "
         "model token layer teacher student grid shard tensor rank pipeline data parallel "
         "loss gradient weight bias learning rate step batch window attention head").split()


def write_corpus(path, seed=0, docs=160):
    """Random word documents separated by blank lines, then SAMPLES (each its own document)."""
    rng = random.Random(seed)
    out = []
    for _ in range(docs):
        lines = []
        for _ in range(rng.randint(1, 3)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(5, 16))]
            words[0] = words[0].capitalize()
            lines.append(" ".join(words) + rng.choice([".", "!", "?", ","]))
        out.append("\n".join(lines))
    out += SAMPLES
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(out) + "\n")


def build_data(work):
    """Corpus -> tokenizer -> shards. Returns (tokenizer json path, shards dir)."""
    corpus = os.path.join(work, "corpus.txt")
    write_corpus(corpus)
    tok = os.path.join(work, "tok.json")
    k.run(["tokenizer", "--input", corpus, "--vocab-size", VOCAB, "--out", tok])
    shards = os.path.join(work, "shards")
    k.run(["prepare", "--input", corpus, "--tokenizer", tok, "--out", shards,
           "--val-fraction", 0.25, "--shard-tokens", 4096])
    return tok, shards


def train_tiny(work, shards, name="run", extra=(), steps=3, lr=3e-3):
    run_dir = os.path.join(work, name)
    k.run(["train", "--data", os.path.join(shards, "train"), "--run-dir", run_dir,
           "--n-layer", 2, "--n-head", 2, "--d-model", 32, "--max-seq", T, "--steps", steps,
           "--batch-size", 4, "--lr", lr, "--seed", 7, *extra])
    return run_dir


def token_shards(directory):
    return [p for p in sorted(glob.glob(os.path.join(directory, "*.h5")))
            if h5py.File(p, "r").attrs["format"] == "kdgrid-tokens"]


def stream(directory):
    """The shards' tokens in file-name order, concatenated (eval's input)."""
    return np.concatenate([h5py.File(p, "r")["tokens"][()].astype(np.int64)
                           for p in token_shards(directory)])


def windows(tokens, max_tokens):
    """eval's windows [n, T+1]: consecutive, non-overlapping, tail dropped, at most
    ceil(max_tokens / T) of them (max_tokens is a multiple of T in these tests)."""
    n = min(len(tokens) // (T + 1), max_tokens // T)
    return tokens[:n * (T + 1)].reshape(n, T + 1)


def documents(directory):
    """(text, ids without the trailing end-of-text) of every document of a prepared split."""
    out = []
    for p in sorted(glob.glob(os.path.join(directory, "*.h5"))):
        with h5py.File(p, "r") as f:
            if f.attrs["format"] != "kdgrid-tokens":
                continue
            eot = int(f.attrs["eot_token"])
            toks, offs = f["tokens"][()], f["doc_offsets"][()]
        docs_ids = [toks[offs[i]:offs[i + 1]].tolist() for i in range(len(offs) - 1)]
        out.append((p, eot, docs_ids))
    texts = []
    for p in sorted(glob.glob(os.path.join(directory, "*.h5"))):
        with h5py.File(p, "r") as f:
            if f.attrs["format"] != "kdgrid-text":
                continue
            data, offs = f["text/bytes"][()].tobytes(), f["text/offsets"][()]
            texts += [data[offs[i]:offs[i + 1]].decode("utf-8") for i in range(len(offs) - 1)]
    ids = []
    for _, eot, docs_ids in out:
        for d in docs_ids:
            k.check(d and d[-1] == eot, "a prepared document does not end with end-of-text")
            ids.append(d[:-1])
    k.check(len(ids) == len(texts),
            f"{directory}: {len(texts)} text documents, {len(ids)} token ones")
    return list(zip(texts, ids))


def read_safetensors(path):
    """Pure-Python parse: (header dict, metadata, {name: numpy array}), checking the layout."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    k.check(8 + n <= len(raw), f"{path}: header length {n} beyond the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    k.check((8 + n) % 8 == 0, f"{path}: data section not 8-byte aligned (header {n} bytes)")
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    dtypes = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2")}
    arrays, spans = {}, []
    for name, e in header.items():
        b, end = e["data_offsets"]
        spans.append((b, end, name))
        if e["dtype"] == "BF16":
            bits = np.frombuffer(data[b:end], dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(data[b:end], dtype=dtypes[e["dtype"]]).astype(np.float32)
        k.check(arr.size == int(np.prod(e["shape"], dtype=np.int64)),
                f"{path}: {name}: shape {e['shape']} vs {end - b} bytes")
        arrays[name] = arr.reshape(e["shape"])
    spans.sort()
    pos = 0
    for b, end, name in spans:
        k.check(b == pos, f"{path}: {name} starts at {b}, expected {pos} (tensors must tile)")
        pos = end
    k.check(pos == len(data), f"{path}: tensors cover {pos} of {len(data)} data bytes")
    return header, meta, arrays


def write_safetensors(path, arrays, dtype="F32", header_edit=None):
    """Writes {name: float32 array} as F32, F16 or BF16 (round to nearest even)."""
    header, chunks, pos = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in arrays.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        if dtype == "F32":
            b = a.astype("<f4").tobytes()
        elif dtype == "F16":
            b = a.astype("<f2").tobytes()
        else:
            u = a.view(np.uint32).astype(np.uint64)
            b = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [pos, pos + len(b)]}
        chunks.append(b)
        pos += len(b)
    if header_edit:
        header_edit(header)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def bf16_round(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


def model_h5(step_dir):
    return os.path.join(step_dir, "model.h5")


def kdgrid_params(step_dir):
    with h5py.File(model_h5(step_dir), "r") as f:
        attrs = {a: int(f["model"].attrs[a]) for a in
                 ("n_layer", "n_head", "d_model", "d_ff", "vocab_size", "max_seq", "attn_window")}
        params = {n: f["model"][n][()] for n in f["model"]}
        sha = f.attrs["tokenizer_sha256"]
    return attrs, params, sha.decode() if isinstance(sha, bytes) else str(sha)


def hf_name(kd):
    """kdgrid checkpoint name -> (HF GPT2LMHeadModel name, transposed?)."""
    if kd == "tok_emb":
        return "transformer.wte.weight", False
    if kd == "pos_emb":
        return "transformer.wpe.weight", False
    if kd.startswith("ln_f."):
        return "transformer." + kd, False
    _, i, rest = kd.split(".", 2)
    table = {"ln1.weight": "ln_1.weight", "ln1.bias": "ln_1.bias",
             "attn.qkv.weight": "attn.c_attn.weight", "attn.qkv.bias": "attn.c_attn.bias",
             "attn.out.weight": "attn.c_proj.weight", "attn.out.bias": "attn.c_proj.bias",
             "ln2.weight": "ln_2.weight", "ln2.bias": "ln_2.bias",
             "mlp.fc1.weight": "mlp.c_fc.weight", "mlp.fc1.bias": "mlp.c_fc.bias",
             "mlp.fc2.weight": "mlp.c_proj.weight", "mlp.fc2.bias": "mlp.c_proj.bias"}
    return f"transformer.h.{i}.{table[rest]}", rest.endswith("weight") and not rest.startswith("ln")


def eval_loss(checkpoint, data, max_tokens):
    r = k.run(["eval", "--checkpoint", checkpoint, "--data", data, "--max-tokens", max_tokens])
    line = json.loads(r.stdout.strip().splitlines()[-1])
    return line, r.stderr
