#!/usr/bin/python3
"""`kdgrid generate` end to end: text -> tokenizer -> prepare -> a tiny `train` -> generate.

The sample is printed as text continuing the prompt, is the same for the same --seed (and on
2 ranks, where rank 0 prints), differs for another seed, and greedy decoding (--temperature 0)
does not depend on the seed. A tokenizer other than the one the checkpoint's shards were made
with (its sha256 differs) exits 2 naming --tokenizer.

usage: generate_test.py   (KDGRID_BIN, optionally KDGRID_MPIEXEC, in the environment)
"""
import os

import kdgrid_cli_util as k

PROMPT = "The quick"


def write_corpus(path):
    words = ["fox", "dog", "river", "stone", "light", "garden", "winter", "song", "door", "cloud"]
    with open(path, "w") as f:
        for i in range(400):
            a, b, c = words[i % 10], words[(i * 3) % 10], words[(i * 7) % 10]
            f.write(f"The quick {a} saw the {b} near the {c} on day {i}.\n")
            if i % 4 == 3:
                f.write("\n")  # documents are separated by blank lines


def test(work):
    text = os.path.join(work, "corpus.txt")
    write_corpus(text)
    tok, other_tok = os.path.join(work, "tok.json"), os.path.join(work, "other.json")
    k.run(["tokenizer", "--input", text, "--vocab-size", 320, "--out", tok])
    k.run(["tokenizer", "--input", text, "--vocab-size", 300, "--out", other_tok])
    shards = os.path.join(work, "shards")
    k.run(["prepare", "--input", text, "--tokenizer", tok, "--out", shards, "--val-fraction", 0.1])
    run_dir = os.path.join(work, "run")
    k.run(["train", "--data", os.path.join(shards, "train"), "--run-dir", run_dir, "--steps", 20,
           "--n-layer", 2, "--n-head", 2, "--d-model", 32, "--max-seq", 32, "--batch-size", 4,
           "--lr", 3e-3])

    def generate(seed, np_=1, extra=()):
        args = ["generate", "--checkpoint", run_dir, "--tokenizer", tok, "--prompt", PROMPT,
                "--max-new-tokens", 30, "--seed", seed] + list(extra)
        return k.run(args, np_).stdout

    first = generate(1)
    k.check(first.startswith(PROMPT), f"the sample does not continue the prompt: {first!r}")
    k.check(len(first.strip()) > len(PROMPT), f"nothing was generated: {first!r}")
    k.check(generate(1) == first, "the same --seed gave another sample")
    k.check(generate(1, np_=2) == first, "2 ranks gave another sample than 1 for the same --seed")
    k.check(generate(2) != first,
            f"--seed 2 gave the same 30 sampled tokens as --seed 1: {first!r}")
    greedy = generate(1, extra=["--temperature", 0])
    k.check(generate(7, extra=["--temperature", 0]) == greedy, "greedy decoding depends on --seed")

    r = k.run(["generate", "--checkpoint", run_dir, "--tokenizer", other_tok, "--prompt", PROMPT],
              expect=2, needle="--tokenizer")
    k.check(r.stdout == "", f"a refused generate printed: {r.stdout!r}")


if __name__ == "__main__":
    k.main(test)
