"""`kdgrid augment` end to end, checked with h5py (DESIGN sections 2 and 6).

Runs the real binary ($KDGRID_BIN) on text shards written here with h5py (one of them empty):
perturbation writes the same bytes on 1 and 3 ranks, with one output shard per input shard
under the input's name (also for an input shard that is empty or whose documents keep no
variant: a shard with num_docs 0, its provenance columns empty) and provenance that h5py reads (global source_doc, method codes, seed
and parameters as root attributes); back-translation through --bt-command gives exactly the
translated documents (one sentence per line in, one per line out) and drops unchanged ones,
also when shards are streamed through one process with a tiny look-ahead; translators that die,
drop or add lines exit 2 and leave no file in --out, on 1 and 2 ranks; a missing WordNet exits
2 naming wordnet-base; bad options exit 2 naming the option; and augmented shards go through
`kdgrid prepare` into token shards that keep their provenance (empty shards among them
contribute nothing and are accepted).

Usage: test_augment_h5py.py [MPIEXEC]
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
write_text_shard = cli.write_text_shard
CODES = "0=backtranslate,1=perturb,2=fgsm"


def read_text_shard(path):
    """(documents, source_doc, method, method codes attribute, root attributes as text)."""
    with h5py.File(path, "r") as f:
        check(f.attrs["format"] == "kdgrid-text", f"{path}: format")
        check(f.attrs["format_version"] == 1, f"{path}: format_version")
        b, o = f["text/bytes"], f["text/offsets"]
        check(b.dtype == np.uint8 and o.dtype == np.uint64, f"{path}: text dtypes")
        data, offsets = b[:].tobytes(), o[:]
        docs = [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        src, meth = f["provenance/source_doc"], f["provenance/method"]
        check(src.dtype == np.int64 and src.shape == (len(docs),), f"{path}: source_doc int64 [n_docs]")
        check(meth.dtype == np.uint8 and meth.shape == (len(docs),), f"{path}: method uint8 [n_docs]")
        codes = meth.attrs["codes"]
        codes = codes.decode() if isinstance(codes, bytes) else str(codes)
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
        return docs, src[:].tolist(), meth[:].tolist(), codes, attrs


def make_shards(directory, shards):
    os.makedirs(directory)
    for i, docs in enumerate(shards):
        write_text_shard(os.path.join(directory, f"text_{i:05d}.h5"), docs)
    # Not shards: ignored by augment.
    with open(os.path.join(directory, "notes.txt"), "w") as f:
        f.write("not a shard\n")


def rich_documents():
    """Documents with layout: several lines, indentation, CRLF, tabs, several sentences a line."""
    rng = np.random.default_rng(11)
    words = ["car", "house", "quickly", "happy", "forest", "teacher", "small", "bright", "the", "a",
             "of", "road", "ship", "friend", "speak", "window", "music", "dark", "city", "river",
             "naïve", "café", "2020", "well-known", "don't"]
    shards = []
    for n in (7, 0, 5, 9):
        docs = []
        for _ in range(n):
            lines = []
            for _ in range(int(rng.integers(1, 4))):
                sentences = []
                for _ in range(int(rng.integers(1, 3))):
                    ws = list(rng.choice(words, size=int(rng.integers(3, 12))))
                    ws[0] = ws[0].capitalize()
                    sentences.append(" ".join(ws) + str(rng.choice([".", "!", "?", ","])))
                lines.append(("  " if rng.random() < 0.3 else "") + "  ".join(sentences))
            sep = "\r\n" if rng.random() < 0.2 else "\n"
            docs.append((sep.join(lines) + sep).encode())
        shards.append(docs)
    return shards


def ascii_upper(b):
    return bytes(c - 32 if 97 <= c <= 122 else c for c in b)


def check_output_dir(out_dir, in_dir, in_shards, method_code):
    """Output shards: one per input shard, same names (an input shard without documents, or
    whose documents keep no variant, gives a shard without documents); provenance points into
    the right shard. Returns (documents, source_doc, root attributes) per output shard."""
    names = sorted(n for n in os.listdir(out_dir))
    in_names = sorted(n for n in os.listdir(in_dir) if n.endswith(".h5"))
    check(names == in_names, f"{out_dir}: output names {names} == {in_names}")
    first, result = 0, []
    for name, docs in zip(in_names, in_shards):
        out_docs, src, meth, codes, attrs = read_text_shard(os.path.join(out_dir, name))
        check(codes == CODES, f"{name}: method codes '{codes}'")
        check(all(m == method_code for m in meth), f"{name}: method {method_code}")
        check(all(first <= s < first + len(docs) for s in src),
              f"{name}: source_doc in [{first}, {first + len(docs)}): {src}")
        check(src == sorted(src), f"{name}: source documents in order")
        for d, s in zip(out_docs, src):
            check(d != docs[s - first], f"{name}: a variant identical to its source was kept")
        result.append((out_docs, src, attrs))
        first += len(docs)
    return result


def summary_counts(out):
    m = re.search(r"(\d+) shards, (\d+) documents -> (\d+) documents \(dropped: (\d+) identical "
                  r"to their source, (\d+) duplicate\) in (\d+) shards", out)
    check(m is not None, f"summary line: {out}")
    return [int(g) for g in m.groups()] if m else [0] * 6


def test_perturb(tmp):
    shards = rich_documents()
    n_docs = sum(len(s) for s in shards)
    inp = os.path.join(tmp, "in")
    make_shards(inp, shards)
    args = ["augment", "--method", "perturb", "--input", inp, "--seed", "7", "--num-aug", "3",
            "--eda-sr", "0.2", "--eda-rd", "0.15"]
    out1, out3 = os.path.join(tmp, "p1"), os.path.join(tmp, "p3")
    _, log1 = run([KDGRID] + args + ["--out", out1])
    _, log3 = run([MPIEXEC, "-np", "3", KDGRID] + args + ["--out", out3])
    check("sentences/s" in log1, f"summary reports sentences/s: {log1}")
    counts = summary_counts(log1)
    check(counts[0] == 4 and counts[1] == n_docs and counts[5] == 4, f"counts {counts}")
    check(counts[2] + counts[3] + counts[4] == 3 * n_docs, f"written + dropped = 3 x docs: {counts}")
    check(summary_counts(log3) == counts, f"same counts on 3 ranks: {log3}")
    for name in sorted(os.listdir(out1)):
        check(filecmp.cmp(os.path.join(out1, name), os.path.join(out3, name), shallow=False),
              f"perturb {name}: identical bytes on 1 and 3 ranks")
    result = check_output_dir(out1, inp, shards, 1)
    written = 0
    for out_docs, src, attrs in result:
        written += len(out_docs)
        for k, v in [("seed", "7"), ("num_aug", "3"), ("eda_sr", "0.2"), ("eda_ri", "0.1"),
                     ("eda_rs", "0.1"), ("eda_rd", "0.15"), ("augment_method", "perturb")]:
            check(attrs.get(k) == v, f"root attribute {k} = {attrs.get(k)!r}, expected {v!r}")
        check(all(src.count(s) <= 3 for s in src), "at most --num-aug variants per document")
    check(written == counts[2], f"{written} documents in the shards, {counts[2]} reported")
    # Another seed, other variants.
    out_seed = os.path.join(tmp, "p_seed")
    run([KDGRID] + args[:-8] + ["--seed", "8", "--num-aug", "3", "--eda-sr", "0.2", "--eda-rd",
                                "0.15", "--out", out_seed])
    check(not filecmp.cmp(os.path.join(out1, "text_00000.h5"), os.path.join(out_seed, "text_00000.h5"),
                          shallow=False), "another --seed gives other variants")
    # A missing WordNet exits 2 naming the package, on one rank and two.
    for launcher in ([KDGRID], [MPIEXEC, "-np", "2", KDGRID]):
        rc, out = run(launcher + args + ["--out", os.path.join(tmp, "nown"), "--wordnet-dir",
                                         os.path.join(tmp, "no-wordnet")], expect_rc=None)
        check(rc == 2 and "wordnet-base" in out, f"missing WordNet: rc {rc}, {out!r}")
    # Shards already in --out are refused.
    rc, out = run([KDGRID] + args + ["--out", out1], expect_rc=None)
    check(rc == 2 and "--out" in out, f"existing shards: rc {rc}, {out!r}")
    return inp, out1, shards, counts[2]


def test_bt_command(tmp):
    """Returns the output directory (with a shard whose documents kept no variant)."""
    # ASCII documents with single spaces inside sentences: `tr a-z A-Z` maps each to its upper
    # case exactly (the layout between sentences is kept by kdgrid, not sent).
    shards = [
        [b"The cat sat.  The dog ran!\n  Indented line\n", b"ALREADY UPPER CASE.\n", b"x\r\ny z\r\n"],
        [],
        [b"one two three.\tFour five?\n\n", b"42 ... !!!\n", b"last [doc] with $ ^ @ \\ / < >\n"],
        [b"NO VARIANT HERE.\n", b"1, 2, 3\n"],  # upper-casing changes nothing: no kept variant
    ]
    inp = os.path.join(tmp, "bt_in")
    make_shards(inp, shards)
    out = os.path.join(tmp, "bt_out")
    _, log = run([MPIEXEC, "-np", "2", KDGRID, "augment", "--method", "backtranslate", "--input", inp,
                  "--out", out, "--bt-command", "tr a-z A-Z"])
    counts = summary_counts(log)
    # Unchanged by upper-casing: the upper-case documents and those without letters; the last
    # shard keeps none and is written without documents.
    check(counts == [4, 8, 4, 4, 0, 4], f"bt counts {counts}")
    result = check_output_dir(out, inp, shards, 0)
    check(result[1][0] == [] and result[3][0] == [],
          f"the empty shard and the one without variants: {result[1][0]}, {result[3][0]}")
    flat = [d for s in shards for d in s]
    got = [(s, d) for docs, src, _ in result for d, s in zip(docs, src)]
    expected = [(i, ascii_upper(d)) for i, d in enumerate(flat) if ascii_upper(d) != d]
    check(got == expected, f"--bt-command documents: {got} != {expected}")
    attrs = result[0][2]
    check(attrs.get("bt_command") == "tr a-z A-Z" and attrs.get("augment_method") == "backtranslate",
          f"bt attributes {attrs}")
    # The same through one unbuffered process with a look-ahead of 100 bytes: shards stream
    # through the translator, collected while later ones are still being sent.
    out_stream = os.path.join(tmp, "bt_stream")
    run([KDGRID, "augment", "--method", "backtranslate", "--input", inp, "--out", out_stream,
         "--bt-command", "sed -u y/abcdefghijklmnopqrstuvwxyz/ABCDEFGHIJKLMNOPQRSTUVWXYZ/",
         "--bt-lookahead-mb", "0.0001"])
    streamed = [(s, d) for docs, src, _ in check_output_dir(out_stream, inp, shards, 0)
                for d, s in zip(docs, src)]
    check(streamed == expected, "streamed through one process: same documents")

    # Translators that fail: rc 2, the option named, nothing left in --out.
    for cmd, needle, nps in [("head -n 2", "ended after 2 lines", (1, 2)),
                             ("sed 2d", "ended after", (1,)), ("sed p", "lines for the", (1,)),
                             ("cat; exit 3", "status 3", (1, 2)),
                             ("kdgrid-no-such-translator", "status 127", (1,))]:
        for np_ in nps:
            bad = os.path.join(tmp, f"bt_bad_{np_}")
            rc, log = run([MPIEXEC, "-np", str(np_), KDGRID, "augment", "--method", "backtranslate",
                           "--input", inp, "--out", bad, "--bt-command", cmd], expect_rc=None)
            check(rc == 2 and "--bt-command" in log and needle in log,
                  f"'{cmd}' on {np_} ranks: rc {rc}, {log!r}")
            left = os.listdir(bad) if os.path.isdir(bad) else []
            check(left == [], f"'{cmd}' on {np_} ranks left {left}")
    return out


def test_options(tmp, inp):
    base = [KDGRID, "augment", "--out", os.path.join(tmp, "opt")]
    for extra, needle in [(["--method", "fgsm"], "fgsm"), (["--method", "eda"], "--method"),
                          (["--method", "perturb", "--eda-sr", "0.7"], "--eda-sr"),
                          (["--method", "perturb", "--eda-sr", "0", "--eda-ri", "0", "--eda-rs", "0",
                            "--eda-rd", "0"], "nothing to do"),
                          (["--method", "perturb", "--num-aug", "0"], "--num-aug"),
                          (["--method", "perturb", "--bt-pivots", "spa"], "--bt-pivots"),
                          (["--method", "backtranslate", "--num-aug", "2"], "--num-aug"),
                          (["--method", "backtranslate", "--bt-pivots", "spa,spa"], "twice"),
                          (["--method", "backtranslate", "--bt-pivots", "../x"], "--bt-pivots"),
                          (["--method", "backtranslate", "--bt-pivots", "spa", "--bt-command",
                            "cat"], "exclude"),
                          (["--method", "perturb", "--input", os.path.join(tmp, "none")], "none")]:
        if "--input" not in extra:
            extra = extra + ["--input", inp]
        rc, out = run(base + extra, expect_rc=None)
        check(rc == 2 and needle in out, f"{extra}: rc {rc}, {out!r}")


def test_prepare(tmp, aug_dir, n_aug_docs, bt_dir):
    # Augmented shards (an empty one among them) -> prepare -> token shards that carry the
    # provenance.
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "wb") as f:
        for docs in rich_documents():
            f.write(b"\n".join(docs) + b"\n")
    tok = os.path.join(tmp, "tok.json")
    run([KDGRID, "tokenizer", "--input", corpus, "--vocab-size", "300", "--out", tok])
    prep = os.path.join(tmp, "prep")
    run([KDGRID, "prepare", "--input", aug_dir, "--tokenizer", tok, "--out", prep, "--val-fraction",
         "0.25", "--shard-tokens", "100000"])
    total = 0
    for split in ("train", "val"):
        token_shards = sorted(n for n in os.listdir(os.path.join(prep, split)) if n.startswith("tokens_"))
        check(len(token_shards) >= 1, f"prepare {split}: token shards {token_shards}")
        for name in token_shards:
            with h5py.File(os.path.join(prep, split, name), "r") as f:
                n = f["doc_offsets"].shape[0] - 1
                total += n
                src, meth = f["provenance/source_doc"], f["provenance/method"]
                check(src.dtype == np.int64 and src.shape == (n,), f"{name}: source_doc")
                check(bool(np.all(meth[:] == 1)), f"{name}: method perturb")
                codes = meth.attrs["codes"]
                codes = codes.decode() if isinstance(codes, bytes) else str(codes)
                check(codes == CODES, f"{name}: codes {codes}")
                seed = f.attrs["seed"]
                check((seed.decode() if isinstance(seed, bytes) else str(seed)) == "7", f"{name}: seed")
    check(total == n_aug_docs, f"prepare kept every augmented document ({total} vs {n_aug_docs})")
    # Back-translation's output: two shards without documents, one from an input shard whose
    # documents kept no variant; prepare takes the 4 documents of the other two.
    prep_bt = os.path.join(tmp, "prep_bt")
    run([KDGRID, "prepare", "--input", bt_dir, "--tokenizer", tok, "--out", prep_bt,
         "--val-fraction", "0.25", "--shard-tokens", "100000"])
    n_bt = 0
    for split in ("train", "val"):
        for name in os.listdir(os.path.join(prep_bt, split)):
            if name.startswith("tokens_"):
                with h5py.File(os.path.join(prep_bt, split, name), "r") as f:
                    n_bt += f["doc_offsets"].shape[0] - 1
                    check(bool(np.all(f["provenance/method"][:] == 0)), f"{name}: method bt")
    check(n_bt == 4, f"prepare over back-translated shards: {n_bt} documents, expected 4")


def main():
    with tempfile.TemporaryDirectory(prefix="kdgrid-augment-") as tmp:
        inp, aug_dir, _, n_aug = test_perturb(tmp)
        bt_dir = test_bt_command(tmp)
        test_options(tmp, inp)
        test_prepare(tmp, aug_dir, n_aug, bt_dir)
    cli.exit_if_failed()


if __name__ == "__main__":
    main()
