"""`kdgrid prepare` checked with h5py, the reference reader (DESIGN sections 2 and 6).

Runs the real binary ($KDGRID_BIN): trains a small tokenizer, prepares a text whose documents
are known by construction, and checks every contract name, shape, dtype and attribute of
the text and token shards, the validation rule (every k-th document), shard packing, that 1
and 3 ranks write byte-identical files, that provenance of input text shards is carried
over, and that bad --val-fraction values and empty splits exit 2 naming the option.

Usage: test_prepare_h5py.py [MPIEXEC]
"""
import filecmp
import os
import re
import sys
import tempfile

import h5py
import numpy as np

import kdgrid_cli_util as cli

KDGRID = os.environ.get("KDGRID_BIN", "build/kdgrid")
MPIEXEC = sys.argv[1] if len(sys.argv) > 1 else "mpirun"
check = cli.soft_check
run = cli.run_argv


def make_documents():
    """Documents (bytes) and a text file holding them, separated by 1..3 blank lines."""
    rng = np.random.default_rng(5)
    words = ["alpha", "beta", "gamma", "delta", "kdgrid", "shard", "token", "naïve", "café",
             "über", "42", "3.14", "  indented", "tab\there", "λ", "end."]
    docs = []
    for i in range(61):
        lines = []
        for _ in range(int(rng.integers(1, 5))):
            lines.append(" ".join(rng.choice(words, size=int(rng.integers(1, 12)))))
        if i % 10 == 7:
            lines.append("   ")  # a line of spaces is text, not a separator
        doc = "\n".join(lines) + "\n"
        if i % 13 == 5:
            doc = doc.replace("\n", "\r\n")  # CRLF document
        docs.append(doc.encode())
    text = b"\n\n"  # leading blank lines make no document
    for i, doc in enumerate(docs):
        text += doc
        if i + 1 < len(docs):
            sep = b"\r\n" if doc.endswith(b"\r\n") else b"\n"
            text += sep * (1 + i % 3)
    return docs, text[:-1]  # the last document lacks its final newline


def shard_files(split_dir):
    names = sorted(os.listdir(split_dir))
    text = [n for n in names if re.fullmatch(r"text_\d{5}\.h5", n)]
    tokens = [n for n in names if re.fullmatch(r"tokens_\d{5}\.h5", n)]
    check(len(names) == len(text) + len(tokens), f"{split_dir}: unexpected files {names}")
    check([t[5:] for t in text] == [t[7:] for t in tokens], f"{split_dir}: text/token shards pair up")
    return [os.path.join(split_dir, t) for t in text], [os.path.join(split_dir, t) for t in tokens]


def check_shard_pair(text_path, tokens_path, vocab, eot, sha):
    """Contract of one text shard and its token shard; returns (docs, token counts)."""
    with h5py.File(text_path, "r") as f:
        check(f.attrs["format"] == "kdgrid-text", f"{text_path}: format")
        check(f.attrs["format_version"] == 1, f"{text_path}: format_version")
        check(np.issubdtype(f.attrs["format_version"].dtype, np.integer), f"{text_path}: integer version")
        b, o = f["text/bytes"], f["text/offsets"]
        check(b.dtype == np.uint8 and b.ndim == 1, f"{text_path}: /text/bytes uint8 [n_bytes]")
        check(o.dtype == np.uint64 and o.ndim == 1, f"{text_path}: /text/offsets uint64 [n_docs+1]")
        check(b.chunks is not None and o.chunks is not None, f"{text_path}: chunked datasets")
        offsets = o[:]
        data = b[:].tobytes()
        check(offsets[0] == 0 and offsets[-1] == len(data), f"{text_path}: offsets span the bytes")
        check(bool(np.all(np.diff(offsets.astype(np.int64)) >= 0)), f"{text_path}: offsets monotone")
        check("provenance" not in f, f"{text_path}: no provenance for plain text")
        docs = [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    with h5py.File(tokens_path, "r") as f:
        a = f.attrs
        check(a["format"] == "kdgrid-tokens", f"{tokens_path}: format")
        check(a["format_version"] == 1, f"{tokens_path}: format_version")
        check(a["vocab_size"] == vocab, f"{tokens_path}: vocab_size {a['vocab_size']} != {vocab}")
        check(a["eot_token"] == eot, f"{tokens_path}: eot_token")
        check(a["tokenizer_sha256"] == sha, f"{tokens_path}: tokenizer_sha256")
        t, d = f["tokens"], f["doc_offsets"]
        check(t.dtype == (np.uint16 if vocab <= 65536 else np.uint32) and t.ndim == 1,
              f"{tokens_path}: /tokens dtype {t.dtype}")
        check(d.dtype == np.uint64 and d.shape == (len(docs) + 1,),
              f"{tokens_path}: /doc_offsets uint64 [n_docs+1] {d.shape} vs {len(docs)} docs")
        check(t.chunks is not None and d.chunks is not None, f"{tokens_path}: chunked datasets")
        tokens, doc_offsets = t[:].astype(np.int64), d[:].astype(np.int64)
        check(doc_offsets[0] == 0 and doc_offsets[-1] == len(tokens), f"{tokens_path}: offsets span tokens")
        check(bool(np.all(tokens < vocab)), f"{tokens_path}: ids < vocab_size")
        counts = []
        for i in range(len(doc_offsets) - 1):
            span = tokens[doc_offsets[i]:doc_offsets[i + 1]]
            # Each document's span ends with its EOT, and encode never emits EOT itself.
            check(len(span) >= 2 and span[-1] == eot and not np.any(span[:-1] == eot),
                  f"{tokens_path}: doc {i} is its tokens + one EOT")
            counts.append(len(span))
    return docs, counts


def check_split(split_dir, expected_docs, shard_tokens, vocab, eot, sha):
    texts, tokens = shard_files(split_dir)
    check(len(texts) >= 2, f"{split_dir}: several shards ({len(texts)})")
    all_docs = []
    for i, (tp, kp) in enumerate(zip(texts, tokens)):
        docs, counts = check_shard_pair(tp, kp, vocab, eot, sha)
        total = sum(counts)
        # A shard closes as soon as it reaches --shard-tokens: all but the last reach it, and
        # none would without its last document.
        if i + 1 < len(texts):
            check(total >= shard_tokens, f"{kp}: {total} tokens < --shard-tokens {shard_tokens}")
        check(total - counts[-1] < shard_tokens, f"{kp}: kept filling after reaching --shard-tokens")
        all_docs += docs
    check(all_docs == expected_docs,
          f"{split_dir}: documents in order, byte for byte ({len(all_docs)} vs {len(expected_docs)})")


def main():
    with tempfile.TemporaryDirectory(prefix="kdgrid-prepare-") as tmp:
        docs, text = make_documents()
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "wb") as f:
            f.write(text)
        expected_last = docs[-1][:-1]  # written without its final newline
        docs = docs[:-1] + [expected_last]

        tok = os.path.join(tmp, "tok.json")
        _, out = run([KDGRID, "tokenizer", "--input", corpus, "--vocab-size", "300", "--out", tok])
        m = re.search(r"vocab (\d+) .*eot (\d+)\).*sha256 ([0-9a-f]{64})", out)
        check(m is not None, f"tokenizer summary: {out}")
        vocab, eot, sha = int(m.group(1)), int(m.group(2)), m.group(3)

        shard_tokens = 400
        out1 = os.path.join(tmp, "out1")
        _, out = run([KDGRID, "prepare", "--input", corpus, "--tokenizer", tok, "--out", out1,
                      "--val-fraction", "0.25", "--shard-tokens", str(shard_tokens)])
        check(re.search(r"MB/s", out) is not None, f"summary has MB/s: {out}")
        check(re.search(r"train\s+46 docs", out) and re.search(r"val\s+15 docs", out), f"summary: {out}")
        # --val-fraction 0.25: k = 4, documents 3, 7, 11, ... go to validation.
        train = [d for i, d in enumerate(docs) if i % 4 != 3]
        val = [d for i, d in enumerate(docs) if i % 4 == 3]
        check_split(os.path.join(out1, "train"), train, shard_tokens, vocab, eot, sha)
        check_split(os.path.join(out1, "val"), val, shard_tokens, vocab, eot, sha)

        # 3 ranks write the same files, byte for byte.
        out3 = os.path.join(tmp, "out3")
        run([MPIEXEC, "-np", "3", KDGRID, "prepare", "--input", corpus, "--tokenizer", tok, "--out",
             out3, "--val-fraction", "0.25", "--shard-tokens", str(shard_tokens)])
        for split in ("train", "val"):
            names1 = sorted(os.listdir(os.path.join(out1, split)))
            names3 = sorted(os.listdir(os.path.join(out3, split)))
            check(names1 == names3, f"{split}: same files on 1 and 3 ranks")
            for n in names1:
                check(filecmp.cmp(os.path.join(out1, split, n), os.path.join(out3, split, n), shallow=False),
                      f"{split}/{n}: identical on 1 and 3 ranks")

        # Provenance of input text shards is carried over; plain-text documents get -1 / 255.
        aug = os.path.join(tmp, "aug")
        os.makedirs(aug)
        aug_docs = [b"augmented one\n", b"augmented two\n", b"augmented three\n"]
        with h5py.File(os.path.join(aug, "text_00000.h5"), "w") as f:
            f.attrs["format"] = "kdgrid-text"
            f.attrs["format_version"] = 1
            f.attrs["seed"] = 9
            f["text/bytes"] = np.frombuffer(b"".join(aug_docs), dtype=np.uint8)
            f["text/offsets"] = np.cumsum([0] + [len(d) for d in aug_docs]).astype(np.uint64)
            f["provenance/source_doc"] = np.array([7, 8, 9], dtype=np.int64)
            f["provenance/method"] = np.array([1, 0, 1], dtype=np.uint8)
            f["provenance/method"].attrs["codes"] = "0=backtranslate,1=perturb"
        plain = os.path.join(tmp, "plain.txt")
        with open(plain, "wb") as f:
            f.write(b"plain one\n\nplain two\n")
        outp = os.path.join(tmp, "outp")
        run([KDGRID, "prepare", "--input", aug, plain, "--tokenizer", tok, "--out", outp,
             "--val-fraction", "0.5"])
        # Input order: aug docs 0..2, then plain 3, 4; k = 2 sends docs 1 and 3 to validation.
        expect = {"train": ([0, 2, 4], [7, 9, -1], [1, 1, 255]), "val": ([1, 3], [8, -1], [0, 255])}
        all_in = aug_docs + [b"plain one\n", b"plain two\n"]
        for split, (idx, src, meth) in expect.items():
            for kind in ("text", "tokens"):
                with h5py.File(os.path.join(outp, split, f"{kind}_00000.h5"), "r") as f:
                    p = f["provenance"]
                    check(p["source_doc"].dtype == np.int64 and list(p["source_doc"][:]) == src,
                          f"provenance {split}/{kind}: source_doc {p['source_doc'][:]}")
                    check(p["method"].dtype == np.uint8 and list(p["method"][:]) == meth,
                          f"provenance {split}/{kind}: method {p['method'][:]}")
                    check(p["method"].attrs["codes"] == "0=backtranslate,1=perturb,255=none",
                          f"provenance {split}/{kind}: codes {p['method'].attrs['codes']}")
                    check(f.attrs["seed"] == "9", f"provenance {split}/{kind}: seed attribute")
                    if kind == "text":
                        o = f["text/offsets"][:]
                        b = f["text/bytes"][:].tobytes()
                        got = [b[o[i]:o[i + 1]] for i in range(len(o) - 1)]
                        check(got == [all_in[i] for i in idx], f"provenance {split}: documents {got}")

        # Usage errors exit 2 and name the option.
        few = os.path.join(tmp, "few.txt")
        with open(few, "wb") as f:
            f.write(b"a\n\nb\n\nc\n")
        for fraction in ("0", "-0.1", "0.7", "1", "abc"):
            rc, out = run([KDGRID, "prepare", "--input", few, "--tokenizer", tok, "--out",
                           os.path.join(tmp, "bad"), "--val-fraction", fraction], expect_rc=None)
            check(rc == 2 and "val-fraction" in out, f"--val-fraction {fraction}: rc {rc}, {out!r}")
        # 3 documents, k = 5: no validation document.
        rc, out = run([KDGRID, "prepare", "--input", few, "--tokenizer", tok, "--out",
                       os.path.join(tmp, "empty"), "--val-fraction", "0.2"], expect_rc=None)
        check(rc == 2 and "val-fraction" in out and "empty" in out, f"empty split: rc {rc}, {out!r}")
        rc, out = run([MPIEXEC, "-np", "2", KDGRID, "prepare", "--input", few, "--tokenizer", tok,
                       "--out", os.path.join(tmp, "empty2"), "--val-fraction", "0.2"], expect_rc=None)
        check(rc == 2 and "empty" in out, f"empty split on 2 ranks: rc {rc}, {out!r}")
        rc, out = run([MPIEXEC, "-np", "2", KDGRID, "prepare", "--input", os.path.join(tmp, "nope.txt"),
                       "--tokenizer", tok, "--out", os.path.join(tmp, "nope")], expect_rc=None)
        check(rc == 2 and "nope.txt" in out, f"missing input on 2 ranks: rc {rc}, {out!r}")
        # Refuses to mix new shards with old ones.
        rc, out = run([KDGRID, "prepare", "--input", corpus, "--tokenizer", tok, "--out", out1,
                       "--val-fraction", "0.25"], expect_rc=None)
        check(rc == 2 and "--out" in out, f"existing shards: rc {rc}, {out!r}")

    cli.exit_if_failed()


if __name__ == "__main__":
    main()
