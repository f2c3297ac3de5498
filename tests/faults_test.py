#!/usr/bin/python3
"""Faults a training job survives, through the real binary (`kdgrid train` under mpirun).

usage: faults_test.py CASE   (KDGRID_TEST_BIN, optionally KDGRID_MPIEXEC, in the environment)

The binary is build/kdgrid-test ($KDGRID_TEST_BIN): kdgrid with the test hooks of
tests/test_hooks.h installed (KDGRID_TEST_* below); build/kdgrid itself carries none.

  kill9        kill -9 of one rank of a 2-rank job while it trains: every other rank is gone and
               mpirun exits non-zero; a rerun resumes from the newest checkpoint and ends with
               weights bit-identical to an uninterrupted run.
  hang         one rank stopped (SIGSTOP) with --collective-timeout 5: the other rank's watchdog
               fails the job naming the operation, the axis and the silent rank; every rank is
               gone soon after the timeout, mpirun exits non-zero; a rerun resumes bit-exactly.
  hang-save    rank 0 stopped (SIGSTOP, test hook KDGRID_TEST_HANG_IN_SAVE) in the middle of
               saving a checkpoint, after the files are written and before it publishes them,
               with --collective-timeout 5: rank 1's watchdog, waiting in the save's broadcast
               on the world axis, fails the job naming rank 0; every rank is gone, `latest`
               names an intact checkpoint (step 2, or step 4 itself: its files were complete,
               and Open MPI sends SIGCONT before it kills, so rank 0 may publish it before it
               dies) and a rerun resumes from it and finishes.
  crash-save   every rank killed (SIGKILL) in the middle of saving a checkpoint (test hook
               KDGRID_TEST_CRASH_IN_SAVE): the previous checkpoint stays intact, `latest` names
               it, and a rerun resumes from it bit-exactly.
  disk-full    a save under a file-size limit (`ulimit -f` in a bash wrapper): a clear error,
               exit 1, and the previous checkpoint and `latest` untouched.
  nan          a NaN in the loss and gradients (test hook KDGRID_TEST_NAN_STEP): --on-nan stop
               exits 1 naming the step and saves nothing after it; --on-nan skip leaves weights
               and AdamW state unchanged for that step, warns and marks it skipped in metrics.
               Also: bad --on-nan and --collective-timeout values exit 2 naming the option.

The moment a fault is injected is gated on metrics.jsonl made a named pipe with a one-page
buffer: once the line of step S has been read, step S-1's checkpoint is complete (rank 0 saves
it before running step S), and while the test reads no further, rank 0 blocks writing a few
steps later, so the run cannot finish before the fault. No sleeps; the times measured (fault
to every rank gone) are printed, and only checked against generous bounds.
"""
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time

import kdgrid_cli_util as k

VOCAB = 97
STEPS = 30
GATE_STEP = 5  # fault injected after this step's metrics line: step_4 is complete
# Generous bounds on how long the job may take to end after a fault (the measured times are
# printed; these only catch a job that does not end).
DEAD_RANK_BOUND_S = 60
TIMEOUT_S = 5
HUNG_RANK_SLACK_S = 45
SURVIVOR_GRACE_S = 10


def train_args(data, run_dir, np_, extra=(), **options):
    """Global batch 4 windows of 17 tokens on both grids. `options` override (steps=6, ...)."""
    o = dict(steps=STEPS, d_model=32, save_every=2, precision="fp32")
    o.update(options)
    args = ["train", "--data", data, "--run-dir", run_dir, "--n-layer", 2, "--n-head", 2,
            "--max-seq", 16, "--batch-size", 4 // np_, "--dp", np_, "--seed", 5, "--lr", 1e-3]
    for key, value in o.items():
        args += ["--" + key.replace("_", "-"), value]
    return args + list(extra)


def make_data(work):
    data = os.path.join(work, "data")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"), k.random_tokens(40 * 17, VOCAB, 2),
                        VOCAB)
    return data


def rank_pids(mpirun_pid):
    """{world rank: pid} of the ranks mpirun started (from each child's environment)."""
    out = {}
    for pid in k._rank_pids(mpirun_pid):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        if b"OMPI_COMM_WORLD_RANK" in env:
            out[int(env[b"OMPI_COMM_WORLD_RANK"])] = pid
    return out


def alive(pid):
    """Whether pid is a live process (not gone, not a zombie waiting for PID 1 to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def survivors_of(pids, grace_s=SURVIVOR_GRACE_S):
    """The ranks still alive grace_s seconds after mpirun returned. mpirun kills its ranks
    before it exits, but a killed process can take a moment to leave the process table on a
    loaded machine; a rank that outlives the grace really survived."""
    deadline = time.monotonic() + grace_s
    while True:
        survivors = [r for r, pid in pids.items() if alive(pid)]
        if not survivors or time.monotonic() > deadline:
            return survivors
        time.sleep(0.1)


class GatedRun:
    """`kdgrid train` under mpirun with metrics.jsonl as a named pipe of one page (4 KiB)."""

    def __init__(self, args, run_dir, np_, env=None):
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")
        os.makedirs(run_dir, exist_ok=True)
        if os.path.exists(self.metrics_path):
            os.remove(self.metrics_path)
        os.mkfifo(self.metrics_path)
        self.stderr_path = os.path.join(run_dir, "stderr.txt")
        self.stderr_file = open(self.stderr_path, "w")
        self.p = subprocess.Popen(k.command(args, np_), stdout=subprocess.DEVNULL,
                                  stderr=self.stderr_file, env=env)
        # Should kdgrid end without opening the pipe, open it ourselves so the read ends.
        threading.Thread(target=self._unblock_if_exited, daemon=True).start()
        fd = os.open(self.metrics_path, os.O_RDONLY)
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
        except OSError:
            pass  # the writer was faster: the gate still holds, only less tightly
        self.reader = os.fdopen(fd)
        self.lines = []

    def _unblock_if_exited(self):
        self.p.wait()
        try:
            os.close(os.open(self.metrics_path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    def read_until_step(self, step):
        while True:
            line = self.reader.readline()
            if not line:
                k.fail(f"the run ended before step {step}:\n{self.stderr()}")
            self.lines.append(line)
            if f'"step":{step},' in line:
                return

    def drain_in_background(self):
        def drain():
            for line in self.reader:
                self.lines.append(line)
        t = threading.Thread(target=drain, daemon=True)
        t.start()
        return t

    def stderr(self):
        if not self.stderr_file.closed:
            self.stderr_file.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def finish(self):
        """Waits for mpirun; leaves a regular metrics.jsonl with the lines read."""
        rc = self.p.wait()
        self.reader.close()
        os.remove(self.metrics_path)
        with open(self.metrics_path, "w") as f:
            f.writelines(self.lines)
        self.stderr_file.close()
        return rc


def weights_equal(straight, resumed, what):
    c1, c2 = k.latest(straight), k.latest(resumed)
    k.check(os.path.basename(c1) == os.path.basename(c2) == f"step_{STEPS:08d}",
            f"{what}: latest {c1} vs {c2}")
    k.assert_same_datasets(os.path.join(c1, "model.h5"), os.path.join(c2, "model.h5"),
                           f"{what} model.h5")
    k.assert_same_datasets(os.path.join(c1, "optimizer.h5"), os.path.join(c2, "optimizer.h5"),
                           f"{what} optimizer.h5")


def resume_and_compare(data, work, run_dir, np_, extra, what):
    latest_before = os.path.basename(k.latest(run_dir))
    r = k.run(train_args(data, run_dir, np_, extra), np_)
    k.check(f"resumed from {os.path.join(run_dir, 'checkpoints', latest_before)}" in r.stderr,
            f"{what}: the rerun did not resume from {latest_before}:\n{r.stderr}")
    straight = os.path.join(work, "straight")
    k.run(train_args(data, straight, np_, extra), np_)
    weights_equal(straight, run_dir, what)
    return latest_before


def case_kill9(work):
    data = make_data(work)
    run_dir = os.path.join(work, "run")
    run = GatedRun(train_args(data, run_dir, 2), run_dir, 2)
    pids = {}
    try:
        run.read_until_step(GATE_STEP)
        pids = rank_pids(run.p.pid)
        k.check(sorted(pids) == [0, 1], f"rank pids {pids}")
        os.kill(pids[1], signal.SIGKILL)
        t_kill = time.monotonic()
        drain = run.drain_in_background()
        try:
            rc = run.p.wait(timeout=DEAD_RANK_BOUND_S)
        except subprocess.TimeoutExpired:
            k.fail(f"mpirun still runs {DEAD_RANK_BOUND_S} s after kill -9 of rank 1")
        t_gone = time.monotonic()
        drain.join()
        rc = run.finish()
        survivors = survivors_of(pids)  # before the clean-up below kills them
    finally:
        for pid in pids.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    k.check(rc != 0, f"mpirun exited {rc} after a rank was killed")
    k.check(not survivors, f"ranks {survivors} outlived mpirun")
    print(f"kill -9 of rank 1 after step {GATE_STEP}: mpirun exited {rc}, every rank gone "
          f"{t_gone - t_kill:.2f} s after the kill")
    ckpt = resume_and_compare(data, work, run_dir, 2, [], "kill -9")
    print(f"rerun resumed from {ckpt}; final weights bit-identical to an uninterrupted run")


def case_hang(work):
    data = make_data(work)
    run_dir = os.path.join(work, "run")
    extra = ["--collective-timeout", TIMEOUT_S]
    run = GatedRun(train_args(data, run_dir, 2, extra), run_dir, 2)
    pids = {}
    try:
        run.read_until_step(GATE_STEP)
        pids = rank_pids(run.p.pid)
        k.check(sorted(pids) == [0, 1], f"rank pids {pids}")
        os.kill(pids[1], signal.SIGSTOP)
        t_stop = time.monotonic()
        drain = run.drain_in_background()  # rank 0 must not block on the pipe
        bound = TIMEOUT_S + HUNG_RANK_SLACK_S
        try:
            run.p.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            k.fail(f"mpirun still runs {bound} s after rank 1 stopped "
                   f"(--collective-timeout {TIMEOUT_S}):\n{run.stderr()}")
        t_gone = time.monotonic()
        drain.join()
        rc = run.finish()
        err = run.stderr()
        survivors = survivors_of(pids)  # before the clean-up below kills them
    finally:
        for pid in pids.values():  # a stopped rank that outlived the job
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
    k.check(rc != 0, f"mpirun exited {rc} after a rank hung:\n{err}")
    k.check(not survivors, f"ranks {survivors} outlived mpirun")
    k.check("collective timeout" in err and "--collective-timeout 5" in err,
            f"no watchdog message:\n{err}")
    # The stopped rank can leave the others waiting in a gradient all-reduce (dp axis) or in
    # the step's stop-flag all-reduce (world axis), depending on where the signal lands.
    k.check("dp axis" in err or "world axis" in err,
            f"the message does not name the axis:\n{err}")
    k.check("collective #" in err, f"the message does not number the operation:\n{err}")
    k.check(any(op in err for op in ("all-reduce", "reduce-scatter", "all-gather", "barrier",
                                      "broadcast")), f"the message names no operation:\n{err}")
    silent = err[err.index("Silent"):].split("\n")[0] if "Silent" in err else ""
    k.check("rank 1 (world rank 1)" in silent, f"the message does not name rank 1:\n{err}")
    line = next(x for x in err.splitlines() if "collective timeout" in x)
    print(f"rank 1 stopped after step {GATE_STEP}: mpirun exited {rc}, every rank gone "
          f"{t_gone - t_stop:.2f} s after SIGSTOP (--collective-timeout {TIMEOUT_S})")
    print(f"message: {line.strip()}")
    ckpt = resume_and_compare(data, work, run_dir, 2, extra, "hung rank")
    print(f"rerun resumed from {ckpt}; final weights bit-identical to an uninterrupted run")


def case_hang_save(work):
    data = make_data(work)
    run_dir = os.path.join(work, "run")
    extra = ["--collective-timeout", TIMEOUT_S]
    env = dict(os.environ, KDGRID_TEST_HANG_IN_SAVE="4:0")  # rank 0, saving step 4
    args = train_args(data, run_dir, 2, extra, steps=6)
    stderr_path = os.path.join(work, "stderr.txt")
    with open(stderr_path, "w") as err_file:
        p = subprocess.Popen(k.command(args, 2), stdout=subprocess.DEVNULL, stderr=err_file,
                             env=env)
    pids, t_stop = {}, None
    try:
        # Rank 0 stops itself: wait for its state to read T (stopped), or for the job to end.
        while p.poll() is None and t_stop is None:
            pids = pids if len(pids) == 2 else rank_pids(p.pid)
            try:
                with open(f"/proc/{pids[0]}/stat") as f:
                    stat = f.read()
                if stat[stat.rindex(")") + 2] == "T":
                    t_stop = time.monotonic()
            except (KeyError, OSError):
                pass
            time.sleep(0.02)
        bound = TIMEOUT_S + HUNG_RANK_SLACK_S
        try:
            rc = p.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
            with open(stderr_path) as f:
                k.fail(f"mpirun still ran {bound} s after rank 0 stopped in a save "
                       f"(--collective-timeout {TIMEOUT_S}):\n{f.read()}")
        t_gone = time.monotonic()
        survivors = survivors_of(pids)  # before the clean-up below kills them
    finally:
        for pid in pids.values():  # a stopped rank that outlived the job
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
    with open(stderr_path) as f:
        err = f.read()
    k.check(t_stop is not None, f"rank 0 never stopped (pids {pids}):\n{err}")
    k.check("KDGRID_TEST_HANG_IN_SAVE" in err, f"the hook did not fire:\n{err}")
    k.check(rc != 0, f"mpirun exited {rc} after a rank hung in a save:\n{err}")
    k.check(not survivors, f"ranks {survivors} outlived mpirun")
    k.check("collective timeout" in err and f"--collective-timeout {TIMEOUT_S}" in err,
            f"no watchdog message:\n{err}")
    line = next((x for x in err.splitlines() if "collective timeout" in x), "")
    # Rank 1 waits for rank 0's broadcast that ends the save (runOnRankZero).
    k.check("broadcast" in line and "world axis" in line and "collective #" in line,
            f"the message does not name the save's broadcast on the world axis:\n{err}")
    silent = line[line.index("Silent"):] if "Silent" in line else ""
    k.check("rank 0 (world rank 0)" in silent, f"the message does not name rank 0:\n{err}")
    latest = os.path.basename(k.latest(run_dir))
    k.check(latest in ("step_00000002", "step_00000004"),
            f"latest is {latest} after a hang saving step 4")
    print(f"rank 0 stopped while saving step 4: mpirun exited {rc}, every rank gone "
          f"{t_gone - t_stop:.2f} s after the stop (--collective-timeout {TIMEOUT_S}); "
          f"latest {latest}")
    print(f"message: {line.strip()}")
    r = k.run(args, 2)  # verifies the checkpoint's checksums as it resolves `latest`
    k.check(f"resumed from {os.path.join(run_dir, 'checkpoints', latest)}" in r.stderr,
            f"the rerun did not resume from {latest}:\n{r.stderr}")
    k.check(os.path.basename(k.latest(run_dir)) == "step_00000006", "the rerun did not finish")


def tree_digest(step_dir):
    h = hashlib.sha256()
    for name in sorted(os.listdir(step_dir)):
        with open(os.path.join(step_dir, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()


def case_crash_save(work):
    data = make_data(work)
    run_dir = os.path.join(work, "run")
    env = dict(os.environ, KDGRID_TEST_CRASH_IN_SAVE="6")
    # Step 4 saved; the save of step 6 is cut after model.h5 (every rank SIGKILLs itself).
    args = train_args(data, run_dir, 2)
    r = subprocess.run(k.command(args, 2), capture_output=True, text=True, env=env)
    k.check(r.returncode != 0, f"a crash in the save exited {r.returncode}:\n{r.stderr}")
    k.check("KDGRID_TEST_CRASH_IN_SAVE" in r.stderr, f"the hook did not fire:\n{r.stderr}")
    k.check(os.path.basename(k.latest(run_dir)) == "step_00000004",
            f"latest is {k.latest(run_dir)} after a crash saving step 6")
    tmp = k.step_dir(run_dir, 6) + ".tmp"
    k.check(os.path.isfile(os.path.join(tmp, "model.h5")) and
            not os.path.exists(os.path.join(tmp, "optimizer.h5")),
            f"the crash did not happen between the two files of {tmp}")
    k.check(not os.path.exists(k.step_dir(run_dir, 6)), "a half-written step 6 was published")
    digest = tree_digest(k.step_dir(run_dir, 4))
    ckpt = resume_and_compare(data, work, run_dir, 2, [], "crash in save")
    print(f"crash while saving step 6 (mpirun exited {r.returncode}): latest stayed step_00000004 "
          f"(sha256 of its files {digest[:16]}...), the rerun resumed from {ckpt} and ended "
          f"bit-identical to an uninterrupted run")


def case_disk_full(work):
    data = make_data(work)
    run_dir = os.path.join(work, "run")
    # d_model 256: model.h5 holds 6.3 MB of tensors, optimizer.h5 12.6 MB.
    k.run(train_args(data, run_dir, 1, steps=4, d_model=256))
    before = tree_digest(k.latest(run_dir))
    k.check(os.path.basename(k.latest(run_dir)) == "step_00000004", "no step 4 checkpoint")
    # 8 MiB: MPI's start-up (PMIx shared memory, > 1 MiB) fits, the optimizer file does not.
    script = 'ulimit -f 8192 && exec "$@"'
    r = subprocess.run(["bash", "-c", script, "bash"] +
                       k.command(train_args(data, run_dir, 1, steps=6, d_model=256)),
                       capture_output=True, text=True)
    k.check(r.returncode == 1, f"a save under `ulimit -f` exited {r.returncode}:\n{r.stderr}")
    k.check("cannot save checkpoint" in r.stderr and "step_00000006" in r.stderr and
            "ulimit -f" in r.stderr, f"the error does not say what failed and why:\n{r.stderr}")
    k.check(os.path.basename(k.latest(run_dir)) == "step_00000004",
            f"latest moved to {k.latest(run_dir)}")
    k.check(tree_digest(k.latest(run_dir)) == before, "the previous checkpoint changed")
    k.check(not os.path.exists(k.step_dir(run_dir, 6)), "a step 6 directory was published")
    message = next(x for x in r.stderr.splitlines() if "cannot save checkpoint" in x)
    print(f"save under ulimit -f 8192: exit 1, previous checkpoint intact; {message.strip()}")


def case_nan(work):
    data = make_data(work)
    for option, value in (("--on-nan", "maybe"), ("--collective-timeout", -1)):
        k.run(train_args(data, os.path.join(work, "usage"), 1, [option, value]), expect=2,
              needle=option)
    for np_, precision in ((1, "bf16"), (2, "fp32")):
        run_dir = os.path.join(work, f"stop{np_}")
        args = train_args(data, run_dir, np_, steps=6, precision=precision)
        env = dict(os.environ, KDGRID_TEST_NAN_STEP="3")
        r = subprocess.run(k.command(args, np_), capture_output=True, text=True, env=env)
        k.check(r.returncode == 1, f"--on-nan stop ({precision}, {np_} ranks) exited "
                f"{r.returncode}:\n{r.stderr}")
        k.check("step 3:" in r.stderr and "not finite" in r.stderr and "--on-nan stop" in r.stderr,
                f"the message does not name step 3:\n{r.stderr}")
        k.check(k.ABORT_BANNER not in r.stderr, f"the stop went through MPI_Abort:\n{r.stderr}")
        k.check(os.path.basename(k.latest(run_dir)) == "step_00000002",
                f"latest is {k.latest(run_dir)}")
        k.check(sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) ==
                ["latest", "step_00000002"], "something was saved after the NaN")
        k.check(len(k.metrics(run_dir)) == 2, "metrics after the NaN step")
        print(f"--on-nan stop, {precision}, {np_} rank(s): exit 1, "
              f"'{next(x for x in r.stderr.splitlines() if 'not finite' in x).strip()}'")

        run_dir = os.path.join(work, f"skip{np_}")
        args = train_args(data, run_dir, np_, steps=4, save_every=1, precision=precision,
                          on_nan="skip", keep_checkpoints=10)
        r = subprocess.run(k.command(args, np_), capture_output=True, text=True, env=env)
        k.check(r.returncode == 0, f"--on-nan skip exited {r.returncode}:\n{r.stderr}")
        k.check("warning: step 3:" in r.stderr and "skipped" in r.stderr,
                f"no warning naming step 3:\n{r.stderr}")
        lines = k.metrics(run_dir)
        k.check([line["skipped"] for line in lines] == [False, False, True, False],
                f"skipped flags {[line['skipped'] for line in lines]}")
        s2, s3, s4 = (k.step_dir(run_dir, s) for s in (2, 3, 4))
        k.assert_same_datasets(os.path.join(s2, "model.h5"), os.path.join(s3, "model.h5"),
                               "weights across the skipped step")
        k.assert_same_datasets(os.path.join(s2, "optimizer.h5"), os.path.join(s3, "optimizer.h5"),
                               "AdamW state across the skipped step")
        w3, w4 = k.datasets(os.path.join(s3, "model.h5")), k.datasets(os.path.join(s4, "model.h5"))
        k.check(any(w3[name].tobytes() != w4[name].tobytes() for name in w3),
                "training did not continue after the skipped step")
        print(f"--on-nan skip, {precision}, {np_} rank(s): step 3 skipped (weights and AdamW "
              f"state unchanged), step 4 updated")


CASES = {"kill9": case_kill9, "hang": case_hang, "hang-save": case_hang_save,
         "crash-save": case_crash_save,
         "disk-full": case_disk_full, "nan": case_nan}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print(f"usage: {sys.argv[0]} {'|'.join(CASES)}")
        sys.exit(2)
    k.use_test_binary()
    k.main(CASES[sys.argv[1]])
