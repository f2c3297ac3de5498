#!/usr/bin/python3
"""Whole `kdgrid train` runs on process grids against one rank (DESIGN section 7).

    grid_test.py MPIRUN CASE [ARGS...]

CASE is one of
  equivalence D,P,T ...  20 fp32 steps on each grid, with and without --zero 1, give the
                         single-rank losses (same global batch) within 1e-5 relative
  resume                 checkpoints cross grids: saved at 2x2x2 (ZeRO) after 10 of 20 steps,
                         resumed at 1x1x1 and 1x4x2; saved at 1x1x1, resumed with ZeRO at 2x1x2
  invalid                impossible grids exit 2 naming the options, without hanging
  vocab-pad              a vocabulary that tp does not divide (padding rows) matches one rank
  low-precision          tensor parallelism in bf16 and fp16 tracks the one-rank run
  launcher               launch/kdgrid-mpirun: SIGTERM to the wrapper stops the ranks with a
                         checkpoint (exit 75), and the run resumes from it

The binary comes from $KDGRID_BIN, the sources from $KDGRID_SOURCE_DIR. Every verdict is taken
here from rank 0's metrics.jsonl and the exit status of mpirun, so all ranks agree with it.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

KDGRID = os.environ.get("KDGRID_BIN", "kdgrid")
SOURCE_DIR = os.environ.get("KDGRID_SOURCE_DIR", os.path.dirname(os.path.dirname(__file__)))
MPIRUN = sys.argv[1] if len(sys.argv) > 1 else "mpirun"

# 4 layers so that pp = 4 has a layer per stage; everything small so that 8 ranks on 2 cores
# finish 20 steps in seconds.
MODEL = ["--n-layer", "4", "--n-head", "4", "--d-model", "32", "--d-ff", "64", "--max-seq", "16"]
# Global batch of 16 sequences: batch_size 16 / (dp * grad_accum) per rank.
GLOBAL_SEQS = 16
GRAD_ACCUM = 4
STEPS = 20
TRAIN = ["--steps", str(STEPS), "--lr", "1e-2", "--warmup-steps", "2", "--seed", "7"]
RTOL = 1e-5  # fp32: different grids sum in different orders; losses agree to ~1e-7 in practice
RUN_TIMEOUT_S = 300  # only a hang gets near this

failures = []


def fail(message):
    print("FAIL: " + message, flush=True)
    failures.append(message)


def make_shards(work, vocab_size=300):
    """A small corpus of word salad -> BPE tokenizer -> train token shards. Returns the dir."""
    rng = random.Random(11)
    words = ("the a cat dog sat on mat ran fast slow red blue green tree house river stone "
             "light dark over under with from into and but").split()
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(20, 60))) + "."
            for _ in range(300)]
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n\n".join(docs) + "\n")
    tok = os.path.join(work, "tokenizer.json")
    run(0, ["tokenizer", "--input", corpus, "--vocab-size", str(vocab_size), "--out", tok])
    run(0, ["prepare", "--input", corpus, "--tokenizer", tok, "--out", os.path.join(work, "shards"),
            "--val-fraction", "0.1", "--shard-tokens", "4096"])
    return os.path.join(work, "shards", "train")


def command(np_, args, wrapper=None):
    if np_ == 0:
        return [KDGRID] + args
    launcher = wrapper or [MPIRUN]
    return launcher + ["-np", str(np_), KDGRID] + args


def run(np_, args, expect_rc=0, timeout=RUN_TIMEOUT_S):
    """Runs kdgrid (np_ = 0: one plain process; else under mpirun). Returns (rc, output)."""
    cmd = command(np_, args)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        fail(f"timed out after {timeout} s (a hang?): {' '.join(cmd)}\n{out[-3000:]}")
        return None, out
    if expect_rc is not None and p.returncode != expect_rc:
        fail(f"exit {p.returncode}, expected {expect_rc}: {' '.join(cmd)}\n{p.stdout[-3000:]}")
    return p.returncode, p.stdout


def metrics(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def losses(run_dir):
    return {m["step"]: m["loss"] for m in metrics(run_dir)}


def compare(what, reference, got, steps, rtol=RTOL):
    """Every step in `steps` present in both, |got - ref| <= rtol |ref|."""
    worst = 0.0
    for s in steps:
        if s not in reference or s not in got:
            fail(f"{what}: step {s} missing (reference has {sorted(reference)[:3]}..., "
                 f"run has {sorted(got)})")
            return
        rel = abs(got[s] - reference[s]) / abs(reference[s])
        worst = max(worst, rel)
        if rel > rtol:
            fail(f"{what}: step {s} loss {got[s]!r} vs one rank {reference[s]!r} "
                 f"(relative {rel:.2e} > {rtol:g})")
            return
    print(f"ok   {what}: steps {steps[0]}..{steps[-1]} within {worst:.1e} relative", flush=True)


def grid_args(dp, pp, tp, zero=0, recompute="none"):
    return ["--dp", str(dp), "--pp", str(pp), "--tp", str(tp), "--zero", str(zero),
            "--batch-size", str(GLOBAL_SEQS // (dp * GRAD_ACCUM)), "--grad-accum", str(GRAD_ACCUM),
            "--recompute", recompute]


def reference_run(work, data, extra=()):
    run_dir = os.path.join(work, "reference")
    run(0, ["train"] + MODEL + TRAIN + ["--data", data, "--run-dir", run_dir] +
        grid_args(1, 1, 1) + list(extra))
    ref = losses(run_dir)
    if sorted(ref) != list(range(1, STEPS + 1)):
        fail(f"the one-rank reference logged steps {sorted(ref)}")
    return run_dir, ref


def parse_grid(text):
    dp, pp, tp = (int(x) for x in text.split(","))
    return dp, pp, tp


def case_equivalence(work, grids):
    data = make_shards(work)
    _, ref = reference_run(work, data)
    recomputes = ["none", "selective", "full"]
    for i, text in enumerate(grids):
        dp, pp, tp = parse_grid(text)
        for zero in (0, 1):
            recompute = recomputes[(2 * i + zero) % 3]
            name = f"dp{dp}_pp{pp}_tp{tp}_zero{zero}"
            run_dir = os.path.join(work, name)
            rc, _ = run(dp * pp * tp, ["train"] + MODEL + TRAIN + ["--data", data, "--run-dir",
                        run_dir] + grid_args(dp, pp, tp, zero, recompute))
            if rc == 0:
                compare(f"{name} recompute {recompute}", ref, losses(run_dir),
                        list(range(1, STEPS + 1)))


def seed_run_dir(src_run, step, dst_run):
    """A fresh run directory whose only checkpoint is `step` of src_run."""
    name = f"step_{step:08d}"
    src = os.path.join(src_run, "checkpoints", name)
    if not os.path.isdir(src):
        fail(f"{src} was not saved")
        return False
    os.makedirs(os.path.join(dst_run, "checkpoints"))
    shutil.copytree(src, os.path.join(dst_run, "checkpoints", name))
    with open(os.path.join(dst_run, "checkpoints", "latest"), "w") as f:
        f.write(name + "\n")
    return True


def resume_and_compare(work, data, ref, src_run, grid, zero, label):
    dp, pp, tp = grid
    dst = os.path.join(work, label)
    if not seed_run_dir(src_run, STEPS // 2, dst):
        return
    rc, out = run(dp * pp * tp, ["train"] + MODEL + TRAIN + ["--data", data, "--run-dir", dst] +
                  grid_args(dp, pp, tp, zero))
    if rc != 0:
        return
    if "resumed from" not in out:
        fail(f"{label}: no 'resumed from' in the log")
    got = losses(dst)
    if sorted(got) != list(range(STEPS // 2 + 1, STEPS + 1)):
        fail(f"{label}: logged steps {sorted(got)}, expected {STEPS // 2 + 1}..{STEPS}")
    compare(label, ref, got, list(range(STEPS // 2 + 1, STEPS + 1)))


def case_resume(work):
    data = make_shards(work)
    save_every = ["--save-every", str(STEPS // 2), "--keep-checkpoints", "2"]
    ref_dir, ref = reference_run(work, data, save_every)
    src = os.path.join(work, "saved_2x2x2_zero")
    rc, _ = run(8, ["train"] + MODEL + TRAIN + ["--data", data, "--run-dir", src] +
                grid_args(2, 2, 2, zero=1) + save_every)
    if rc != 0:
        return
    compare("2x2x2 zero (the saving run)", ref, losses(src), list(range(1, STEPS + 1)))
    # The checkpoint holds full logical tensors whatever grid or ZeRO wrote it.
    with open(os.path.join(src, "checkpoints", "latest")) as f:
        if f.read().strip() != f"step_{STEPS:08d}":
            fail("latest does not name the final step")
    resume_and_compare(work, data, ref, src, (1, 1, 1), 0, "2x2x2+zero -> 1x1x1")
    resume_and_compare(work, data, ref, src, (1, 4, 2), 0, "2x2x2+zero -> 1x4x2")
    resume_and_compare(work, data, ref, ref_dir, (2, 1, 2), 1, "1x1x1 -> 2x1x2+zero")


def case_invalid(work):
    data = make_shards(work)

    def expect_usage(np_, args, needles, label):
        run_dir = os.path.join(work, "invalid_" + label)
        rc, out = run(np_, args + ["--data", data, "--run-dir", run_dir, "--steps", "2"],
                      expect_rc=2, timeout=60)
        if rc != 2:
            return
        errors = [line for line in out.splitlines() if "error" in line]
        for needle in needles:
            if not any(needle in line for line in errors):
                fail(f"{label}: no error line names '{needle}':\n" + "\n".join(errors))
                return
        print(f"ok   {label}: exit 2, {errors[0].strip()}", flush=True)

    model = lambda layers=4, heads=4, d=32, ff=64: [  # noqa: E731
        "train", "--n-layer", str(layers), "--n-head", str(heads), "--d-model", str(d),
        "--d-ff", str(ff), "--max-seq", "16"]
    expect_usage(2, model() + ["--dp", "1", "--pp", "1", "--tp", "1"], ["--dp", "--pp", "--tp"],
                 "dp*pp*tp = 1 on 2 ranks")
    expect_usage(3, model() + ["--dp", "2", "--pp", "2", "--tp", "1"], ["--dp", "--pp", "--tp"],
                 "dp*pp*tp = 4 on 3 ranks")
    expect_usage(3, model() + ["--tp", "2"], ["--tp", "world size"],
                 "tp 2 does not divide 3 ranks")
    expect_usage(2, model(heads=3, d=48) + ["--tp", "2"], ["--n-head", "--tp"],
                 "n_head 3 with tp 2")
    expect_usage(2, model(ff=63) + ["--tp", "2"], ["--d-ff", "--tp"], "d_ff 63 with tp 2")
    expect_usage(3, model(layers=2) + ["--pp", "3"], ["--n-layer", "--pp"], "2 layers on pp 3")
    expect_usage(2, model() + ["--zero", "2"], ["--zero"], "zero 2")


def case_vocab_pad(work):
    # d_model 48 with 6 heads and d_ff 96 divide by 2 and 3; a vocabulary of 301 does not.
    data = make_shards(work)
    model = ["--n-layer", "2", "--n-head", "6", "--d-model", "48", "--d-ff", "96",
             "--max-seq", "16", "--vocab-size", "301"]
    # At --lr 1e-2 one step of this model on these shards is ill-conditioned: a 1e-8 relative
    # weight difference moves its loss by ~4e-6 even between two micro-batch splits on one
    # rank. At 5e-3 every step is well-conditioned and grids agree to ~2e-8.
    train = [("5e-3" if a == "1e-2" else a) for a in TRAIN]
    ref_dir = os.path.join(work, "reference")
    run(0, ["train"] + model + train + ["--data", data, "--run-dir", ref_dir] + grid_args(1, 1, 1))
    ref = losses(ref_dir)
    for dp, pp, tp in ((1, 1, 2), (1, 1, 3), (2, 1, 2)):
        name = f"vocab301_dp{dp}_pp{pp}_tp{tp}"
        run_dir = os.path.join(work, name)
        rc, _ = run(dp * pp * tp, ["train"] + model + train + ["--data", data, "--run-dir",
                    run_dir] + grid_args(dp, pp, tp, zero=int(dp > 1)))
        if rc == 0:
            compare(name, ref, losses(run_dir), list(range(1, STEPS + 1)))
    # The tp = 3 checkpoint holds the 301 logical rows (no padding): one rank evaluates it
    # as it evaluates the reference.
    val = os.path.join(work, "shards", "val")
    evals = []
    for run_dir in (ref_dir, os.path.join(work, "vocab301_dp1_pp1_tp3")):
        rc, out = run(0, ["eval", "--checkpoint", run_dir, "--data", val])
        if rc != 0:
            return
        evals.append(json.loads(out.strip().splitlines()[-1])["loss"])
    if abs(evals[0] - evals[1]) > RTOL * abs(evals[0]):
        fail(f"eval of the tp=3 checkpoint {evals[1]} vs the reference {evals[0]}")
    else:
        print(f"ok   eval of the tp=3 checkpoint on one rank: {evals[1]:.6f} vs {evals[0]:.6f}")


def case_low_precision(work):
    data = make_shards(work)
    for precision, rtol in (("bf16", 5e-3), ("fp16", 5e-3)):
        # bf16/fp16 round activations at different points on different grids (a row-parallel
        # product is rounded per tp rank before the sum): ~2e-4 relative over 20 steps here.
        # Dropping the other tp ranks' partial sums in the 16-bit all-reduce costs 1-2% by
        # step 2, so 5e-3 tells the two apart.
        extra = ["--precision", precision]
        ref_dir = os.path.join(work, "reference_" + precision)
        run(0, ["train"] + MODEL + TRAIN + ["--data", data, "--run-dir", ref_dir] +
            grid_args(1, 1, 1) + extra)
        ref = losses(ref_dir)
        for dp, pp, tp, zero in ((1, 1, 2, 0), (2, 1, 2, 1), (1, 2, 4, 0)):
            name = f"{precision}_dp{dp}_pp{pp}_tp{tp}_zero{zero}"
            run_dir = os.path.join(work, name)
            rc, _ = run(dp * pp * tp, ["train"] + MODEL + TRAIN + ["--data", data, "--run-dir",
                        run_dir] + grid_args(dp, pp, tp, zero) + extra)
            if rc == 0:
                compare(name, ref, losses(run_dir), list(range(1, STEPS + 1)), rtol)
        # ZeRO changes no arithmetic with dp = 2 (a sum of two is order-free): its run must
        # equal the plain one bit for bit, which needs the gathered shards' low-precision
        # weight copies refreshed after every step.
        plain_dir = os.path.join(work, f"{precision}_dp2_pp1_tp2_zero0")
        rc, _ = run(4, ["train"] + MODEL + TRAIN + ["--data", data, "--run-dir", plain_dir] +
                    grid_args(2, 1, 2, 0) + extra)
        zero = losses(os.path.join(work, f"{precision}_dp2_pp1_tp2_zero1"))
        if rc == 0 and zero != losses(plain_dir):
            fail(f"{precision} 2x1x2: ZeRO losses {zero} differ from plain {losses(plain_dir)}")
        elif rc == 0:
            print(f"ok   {precision} 2x1x2: ZeRO and plain data parallel agree bit for bit")
        if ref and ref[STEPS] > 0.8 * ref[1]:
            fail(f"{precision}: the one-rank run does not learn ({ref[1]} -> {ref[STEPS]})")


def case_launcher(work):
    """SIGTERM to launch/kdgrid-mpirun -> USR1 to the ranks -> checkpoint, exit 75 -> resume."""
    data = make_shards(work)
    wrapper = os.path.join(SOURCE_DIR, "launch", "kdgrid-mpirun")
    run_dir = os.path.join(work, "run")
    steps = 100000  # far more than can run before the signal: the stop must come from it
    args = ["train"] + MODEL + ["--steps", str(steps), "--lr", "1e-2", "--data", data,
                                "--run-dir", run_dir] + grid_args(2, 1, 2, zero=1)
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # the wrapper picks a default
    proc = subprocess.Popen([wrapper, "--oversubscribe", "-np", "4", KDGRID] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    # Wait until training is under way (a few steps logged), then stop the wrapper.
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while len(metrics(run_dir)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if proc.poll() is not None:
        fail(f"the wrapped run ended early (exit {proc.returncode}):\n{proc.stdout.read()[-3000:]}")
        return
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        fail("the wrapper did not exit within 120 s of SIGTERM:\n" + out[-3000:])
        return
    if proc.returncode != 75:
        fail(f"wrapper exit {proc.returncode} after SIGTERM, expected 75:\n{out[-3000:]}")
        return
    if "OMP_NUM_THREADS=" not in out:
        fail("the wrapper did not report its OMP_NUM_THREADS default:\n" + out[-2000:])
    logged = metrics(run_dir)
    stopped_at = logged[-1]["step"]
    with open(os.path.join(run_dir, "checkpoints", "latest")) as f:
        latest = f.read().strip()
    if latest != f"step_{stopped_at:08d}":
        fail(f"latest names {latest}, the last logged step is {stopped_at}")
        return
    print(f"ok   SIGTERM to the wrapper: exit 75 after step {stopped_at}, {latest} saved")
    # Resume through the wrapper on another grid for two more steps.
    args_resume = ["train"] + MODEL + ["--steps", str(stopped_at + 2), "--lr", "1e-2", "--data",
                                       data, "--run-dir", run_dir] + grid_args(1, 2, 2)
    p = subprocess.run([wrapper, "--oversubscribe", "-np", "4", KDGRID] + args_resume,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=RUN_TIMEOUT_S)
    if p.returncode != 0 or "resumed from" not in p.stdout:
        fail(f"resume through the wrapper: exit {p.returncode}\n{p.stdout[-3000:]}")
        return
    steps_after = [m["step"] for m in metrics(run_dir)][len(logged):]
    if steps_after != [stopped_at + 1, stopped_at + 2]:
        fail(f"the resumed run logged steps {steps_after}")
    else:
        print(f"ok   resumed at 1x2x2 through the wrapper: steps {steps_after}")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    case, args = sys.argv[2], sys.argv[3:]
    cases = {
        "equivalence": lambda w: case_equivalence(w, args),
        "resume": case_resume,
        "invalid": case_invalid,
        "vocab-pad": case_vocab_pad,
        "low-precision": case_low_precision,
        "launcher": case_launcher,
    }
    if case not in cases:
        print(__doc__)
        return 2
    work = tempfile.mkdtemp(prefix=f"kdgrid-grid-{case}-")
    try:
        cases[case](work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s) in case {case}")
        return 1
    print(f"case {case}: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
