"""`kdgrid augment --method backtranslate` through Apertium (Debian apertium, apertium-eng-spa,
apertium-eng-cat), checked with h5py.

Six documents in two shards, each carrying a year that Apertium passes through unchanged, go
round trip through Spanish and Catalan on 2 ranks. Checks: one variant per pivot and document,
in document order (the year of each variant is its source's year), every variant differs from
its source (the round trip changed the text), lines, blank lines and indentation are kept, and
the characters Apertium's own format uses ([ ] ^ $ @ \\ / < >) and its unknown-word marks
(# *) survive when the source holds them. A missing pair or program exits 2 naming the Debian
package to install.

Usage: test_augment_apertium.py [MPIEXEC]
"""
import os
import re
import shutil
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

SHARDS = [
    [b"In 1911 the cat sat on the mat. I have two dogs and a house.\n",
     b"In 1922 a tall, dark stranger will have more fun than you.\n"
     b"A visit to a strange place will bring fresh work.\n",
     b"In 1933 prices rose [sharply] by 5% ^ $ @ # * \\ / < > in the city.\n"],
    [b"In 1944 the quick brown fox jumps over the lazy dog.\n",
     b"In 1955 we abandon the search for truth and settle for a good fantasy.\n\n"
     b"  Afternoon very favorable for romance.\n",
     b"In 1966 a gift of a flower will soon be made to you.\n"],
]


def main():
    with tempfile.TemporaryDirectory(prefix="kdgrid-apertium-") as tmp:
        inp = os.path.join(tmp, "in")
        os.makedirs(inp)
        for k, docs in enumerate(SHARDS):
            write_text_shard(os.path.join(inp, f"text_{k:05d}.h5"), docs)
        flat = [d for s in SHARDS for d in s]
        out = os.path.join(tmp, "out")
        _, log = run([MPIEXEC, "-np", "2", KDGRID, "augment", "--method", "backtranslate", "--input",
                      inp, "--out", out, "--bt-pivots", "spa,cat"])
        m = re.search(r"6 documents -> (\d+) documents \(dropped: (\d+) identical", log)
        check(m is not None and m.group(1) == "12" and m.group(2) == "0", f"summary: {log}")
        got = []
        for k in range(len(SHARDS)):
            with h5py.File(os.path.join(out, f"text_{k:05d}.h5"), "r") as f:
                o, b = f["text/offsets"][:], f["text/bytes"][:].tobytes()
                src = f["provenance/source_doc"][:].tolist()
                check(bool(np.all(f["provenance/method"][:] == 0)), "method code 0 (backtranslate)")
                pivots = f.attrs["bt_pivots"]
                check((pivots.decode() if isinstance(pivots, bytes) else pivots) == "spa,cat",
                      "bt_pivots attribute")
                got += [(s, b[o[i]:o[i + 1]]) for i, s in enumerate(src)]
        check([s for s, _ in got] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
              f"two variants per document, in order: {[s for s, _ in got]}")
        for s, variant in got:
            source = flat[s]
            year = re.search(rb"\d{4}", source).group(0)
            check(year in variant, f"doc {s}: variant keeps the year {year}: {variant!r}")
            check(variant != source, f"doc {s}: the round trip changed the text")
            check(variant.count(b"\n") == source.count(b"\n"), f"doc {s}: lines kept: {variant!r}")
            check(variant.endswith(b"\n"), f"doc {s}: final newline kept")
            if b"\n\n  " in source:
                check(b"\n\n  " in variant, f"doc {s}: blank line and indentation kept: {variant!r}")
            if s == 2:
                for c in b"[]^$@#*\\/<>%":
                    check(bytes([c]) in variant, f"doc 2: '{chr(c)}' survives: {variant!r}")

        # A missing pair, pair directory or program exits 2 naming the package to install.
        base = [KDGRID, "augment", "--method", "backtranslate", "--input", inp]
        rc, log = run(base + ["--out", os.path.join(tmp, "o1"), "--bt-pivots", "spa,fra"],
                      expect_rc=None)
        check(rc == 2 and "apertium-eng-fra" in log, f"missing pair: rc {rc}, {log!r}")
        empty = os.path.join(tmp, "apertium-empty")
        os.makedirs(os.path.join(empty, "modes"))
        rc, log = run(base + ["--out", os.path.join(tmp, "o2"), "--apertium-dir", empty],
                      expect_rc=None)
        check(rc == 2 and "apertium-eng-spa" in log, f"empty Apertium dir: rc {rc}, {log!r}")
        # PATH without apertium, but with what a singleton MPI process needs to start (orted;
        # an rsh agent that exists, never used on one node).
        bin_dir = os.path.join(tmp, "bin")
        os.makedirs(bin_dir)
        os.symlink(shutil.which("orted"), os.path.join(bin_dir, "orted"))
        env = dict(os.environ, PATH=bin_dir, OMPI_MCA_plm_rsh_agent="/bin/false")
        rc, log = run(base + ["--out", os.path.join(tmp, "o3")], expect_rc=None, env=env)
        check(rc == 2 and "'apertium'" in log, f"no apertium program: rc {rc}, {log!r}")
        for o in ("o1", "o2", "o3"):
            d = os.path.join(tmp, o)
            check(not os.path.isdir(d) or os.listdir(d) == [], f"{o}: no files left")
    cli.exit_if_failed()


if __name__ == "__main__":
    main()
