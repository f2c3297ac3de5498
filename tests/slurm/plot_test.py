#!/usr/bin/python3
"""`kdgrid plot` (src/cli/plot_command.cpp): a tiny run's metrics.jsonl becomes a PNG.

Checks: the file is a PNG (signature, IHDR chunk of 1000 x 1000 pixels) of some size, its
pixels are not all one colour (the IDAT data, decompressed, holds many distinct bytes), and it
is rewritten for another run; a run directory without metrics.jsonl exits 2 naming the file; a
PATH without gnuplot exits 2 naming the Debian package gnuplot-nox; a malformed metrics line
exits 2 naming the file and line.

usage: plot_test.py   (KDGRID_BIN in the environment)
"""
import json
import os
import struct
import zlib

import kdgrid_cli_util as k

VOCAB = 97
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_info(path):
    """(width, height, decompressed image bytes) of a PNG file; fails when it is not one."""
    with open(path, "rb") as f:
        blob = f.read()
    k.check(blob.startswith(PNG_SIGNATURE), f"{path} does not start with the PNG signature")
    pos, width, height, idat = len(PNG_SIGNATURE), 0, 0, b""
    while pos + 8 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", blob[pos + 8 + length:pos + 12 + length])[0]
        k.check(zlib.crc32(kind + body) == crc, f"{path}: bad CRC in chunk {kind}")
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test(work):
    data = os.path.join(work, "data")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"), k.random_tokens(3000, VOCAB, 3), VOCAB)
    k.write_token_shard(os.path.join(work, "val", "tokens_000.h5"), k.random_tokens(500, VOCAB, 4),
                        VOCAB)
    run_dir = os.path.join(work, "run")
    k.run(["train", "--data", data, "--val-data", os.path.join(work, "val"), "--run-dir", run_dir,
           "--steps", 12, "--eval-every", 4, "--n-layer", 1, "--n-head", 2, "--d-model", 32,
           "--max-seq", 16, "--batch-size", 4, "--warmup-steps", 3])

    png = os.path.join(work, "metrics.png")
    r = k.run(["plot", "--run-dir", run_dir, "--out", png])
    k.check("plotted 12 steps" in r.stderr, f"plot said:\n{r.stderr}")
    size = os.path.getsize(png)
    width, height, pixels = png_info(png)
    k.check((width, height) == (1000, 1000), f"{png} is {width} x {height}")
    k.check(size > 20000, f"{png} is only {size} bytes")
    k.check(len(set(pixels)) > 16, f"{png} holds {len(set(pixels))} distinct byte values: blank?")
    print(f"plot: {png}, {width} x {height}, {size} bytes")

    # Default output path, and a picture that follows the data (another run's metrics).
    default = os.path.join(run_dir, "metrics.png")
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        lines = f.readlines()
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
        f.writelines(lines[:6])
    r = k.run(["plot", "--run-dir", run_dir])
    k.check("plotted 6 steps" in r.stderr and os.path.exists(default), f"plot said:\n{r.stderr}")
    with open(png, "rb") as a, open(default, "rb") as b:
        k.check(a.read() != b.read(), "plots of 12 and of 6 steps are the same file")

    # A distillation run's kl (DESIGN section 3) is drawn too: the picture changes with it.
    # Same run name (the title), same steps, plus kl; and, to show that a difference means
    # something, the same data without kl drawn twice gives the same bytes.
    kl_dir = os.path.join(work, "kl", "run")
    os.makedirs(kl_dir)
    with open(os.path.join(kl_dir, "metrics.jsonl"), "w") as f:
        for line in lines[:6]:
            record = json.loads(line)
            record["kl"] = record["loss"] / 2
            f.write(json.dumps(record) + "\n")
    kl_png, again = os.path.join(work, "kl.png"), os.path.join(work, "again.png")
    k.run(["plot", "--run-dir", kl_dir, "--out", kl_png])
    k.run(["plot", "--run-dir", run_dir, "--out", again])
    with open(default, "rb") as a, open(again, "rb") as b, open(kl_png, "rb") as c:
        first, second, with_kl = a.read(), b.read(), c.read()
    k.check(first == second, "the same metrics drawn twice gave different files")
    k.check(with_kl != first, "the kl curve did not change the picture")
    png_info(kl_png)

    empty = os.path.join(work, "empty")
    os.makedirs(empty)
    k.run(["plot", "--run-dir", empty, "--out", png], expect=2,
          needle=os.path.join(empty, "metrics.jsonl"))

    with open(os.path.join(empty, "metrics.jsonl"), "w") as f:
        f.write(lines[0] + "{not json\n")
    k.run(["plot", "--run-dir", empty, "--out", png], expect=2, needle="metrics.jsonl line 2")

    # PATH without gnuplot: a folder linking every other program on PATH (MPI's singleton start
    # runs Open MPI's own tools from PATH).
    path = os.environ["PATH"]
    no_gnuplot = os.path.join(work, "bin")
    os.makedirs(no_gnuplot)
    for folder in path.split(os.pathsep):
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            target, link = os.path.join(folder, name), os.path.join(no_gnuplot, name)
            if name != "gnuplot" and not os.path.lexists(link) and os.access(target, os.X_OK):
                os.symlink(target, link)
    os.environ["PATH"] = no_gnuplot
    try:
        k.run(["plot", "--run-dir", run_dir, "--out", png], expect=2, needle="gnuplot-nox")
    finally:
        os.environ["PATH"] = path


if __name__ == "__main__":
    k.main(test)
