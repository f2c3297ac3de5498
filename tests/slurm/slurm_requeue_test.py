#!/usr/bin/python3
"""Stop, requeue and resume under Slurm (slurm/lib.sh, DESIGN sections 2, 3 and 5).

slurm/distill.sbatch runs a 2-rank fp32 online distillation job (a teacher trained here first,
in seconds, so the resumed run must load the teacher again as well as the student's
checkpoint). Once it has written a few steps, the test sends `scancel --signal=USR1 --batch JOB`, as a user or the time-limit timer would. The batch
shell must pass SIGUSR1 to the ranks through the launcher (srun, or mpirun with
`mpirun` as argument); the ranks save a checkpoint and exit 75; the script requeues its own job,
which restarts (SLURM_RESTART_COUNT=1), resumes from `latest` with no user action and finishes.
Checks: one stop, one restart, metrics.jsonl holds steps 1..N exactly once (the restarted run
continues from the saved step, with the same loss, ce and kl as the uninterrupted run), and the
final model.h5 and optimizer.h5 equal, bit for bit, those of an uninterrupted distillation of
the same config and grid under plain mpirun. (train.sbatch differs from distill.sbatch only in
the subcommand it passes to slurm/lib.sh; train's resume is covered by train_resume_test.py.)

No timing assumption decides the outcome: metrics.jsonl is a pipe the test reads
(slurm_util.MetricsGate), so the run cannot get more than ~16 steps past the 3 the test waits
for; the test then freezes the two ranks (SIGSTOP), sends the signal, checks that SIGUSR1 reaches
both (pending in /proc/PID/status), and only then lets them go on (SIGCONT). So the stop lands
well before the last step however slow or fast the machine is. The seconds from the signal to
the checkpoint, the requeue, the restart and the end are printed.

usage: slurm_requeue_test.py [srun|mpirun]   (KDGRID_BIN, KDGRID_SOURCE_DIR, KDGRID_SLURM_STATE)
"""
import os
import signal
import subprocess
import sys
import time

import slurm_util as s
from slurm_util import k

STEPS = 40
PAUSE_AFTER = 3  # steps the test reads before it signals; the run is at most ~16 ahead
VOCAB = 97
TIMING_FIELDS = {"step_time_s", "tokens_per_s", "mem_peak_mb"}


def test(work, launcher):
    data = os.path.join(work, "data")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"), k.random_tokens(3000, VOCAB, 11), VOCAB)
    teacher = os.path.join(work, "teacher")
    k.run(["train", "--data", data, "--run-dir", teacher, "--steps", 8, "--n-layer", 2,
           "--n-head", 2, "--d-model", 32, "--max-seq", 16, "--batch-size", 4, "--lr", 3e-3])
    config = os.path.join(work, "run.ini")
    s.write_config(config, {"data": data, "teacher": teacher, "steps": STEPS, "n-layer": 2,
                            "n-head": 2, "d-model": 16, "max-seq": 16, "batch-size": 2, "seed": 9,
                            "lr": 1e-3, "warmup-steps": 4, "precision": "fp32",
                            "kd-temperature": 2.0, "kd-alpha": 0.5})
    run_dir = os.path.join(work, "run")
    gate = s.MetricsGate(run_dir, pause_after=PAUSE_AFTER)
    job = s.sbatch([os.path.join(s.SLURM_DIR, "distill.sbatch"), config, "--run-dir", run_dir],
                   work, dict(os.environ, KDGRID_LAUNCHER=launcher))
    log = os.path.join(work, f"kdgrid-distill-{job}.out")

    # The uninterrupted reference, same config and grid, while the job starts.
    reference = os.path.join(work, "reference")
    ref = subprocess.Popen(k.command(["distill", "--config", config, "--run-dir", reference], 2),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    s.wait_until(lambda: gate.lines() >= PAUSE_AFTER, f"job {job} to write {PAUSE_AFTER} steps")
    ranks = s.wait_until(lambda: (lambda p: p if len(p) == 2 else None)(s.rank_pids(job)),
                         f"the 2 ranks of job {job}")
    s.stop_ranks(ranks)
    try:
        t_signal = time.time()
        r = subprocess.run(["scancel", "--signal=USR1", "--batch", job], capture_output=True,
                           text=True)
        k.check(r.returncode == 0, f"scancel --signal=USR1 --batch {job}: {r.stderr}")
        s.wait_until(lambda: all(s.signal_pending(p, signal.SIGUSR1) for p in ranks),
                     f"SIGUSR1 to reach ranks {ranks} through {launcher}", guard_s=30, poll_s=0.05)
        t_forwarded = time.time()
    finally:
        s.continue_ranks(ranks)  # also when the test fails, so that the job can be cancelled
        gate.release()

    info = s.wait_job(job, log)
    t_end = time.time()
    gate.finish()
    _, ref_err = ref.communicate()
    k.check(ref.returncode == 0, f"the reference run exited {ref.returncode}:\n{ref_err}")
    text = s.read(log)
    k.check(info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0",
            f"job {job} ended {info['JobState']} exit {info['ExitCode']}:\n{text}")
    k.check(info["Restarts"] == "1", f"job {job} restarted {info['Restarts']} times:\n{text}")
    for needle, count in (("SLURM_RESTART_COUNT=0", 1), ("SLURM_RESTART_COUNT=1", 1),
                          ("kdgrid distill exited 75", 1), (f"requeued job {job}", 1),
                          ("kdgrid distill exited 0", 1), ("resumed from", 1)):
        k.check(text.count(needle) == count,
                f"'{needle}' appears {text.count(needle)} times, not {count}, in the log:\n{text}")

    # The saved step: the second start resumed from it, and metrics continue from it.
    saved = int(text.split("resumed from ")[1].split(" at step ")[1].split()[0])
    k.check(PAUSE_AFTER <= saved < STEPS, f"saved step {saved} of {STEPS}")
    k.check(os.path.isdir(k.step_dir(run_dir, saved)), f"no checkpoint of step {saved}")
    got, want = k.metrics(run_dir), k.metrics(reference)
    k.check([m["step"] for m in got] == list(range(1, STEPS + 1)),
            f"metrics.jsonl steps {[m['step'] for m in got]}")
    k.check(all("kl" in m for m in got), "metrics.jsonl lacks kl: not a distillation run")
    for a, b in zip(got, want):
        fa = {key: v for key, v in a.items() if key not in TIMING_FIELDS}
        fb = {key: v for key, v in b.items() if key not in TIMING_FIELDS}
        k.check(fa == fb, f"step {a['step']}: requeued run {fa} vs reference {fb}")
    final, ref_final = k.latest(run_dir), k.latest(reference)
    k.check(os.path.basename(final) == f"step_{STEPS:08d}", f"latest is {final}")
    k.assert_same_datasets(os.path.join(final, "model.h5"), os.path.join(ref_final, "model.h5"),
                           "requeued vs uninterrupted model.h5")
    k.assert_same_datasets(os.path.join(final, "optimizer.h5"),
                           os.path.join(ref_final, "optimizer.h5"),
                           "requeued vs uninterrupted optimizer.h5")

    # Measured times, from the log's timestamps (slurm/lib.sh) and this test's clock.
    times = s.log_times(log)
    exited = next(t for t, line in times if "exited 75" in line)
    requeued = next(t for t, line in times if "requeued job" in line)
    restarted = next(t for t, line in times if "SLURM_RESTART_COUNT=1" in line)
    print(f"{launcher}: distill stopped at step {saved}, resumed to {STEPS}:"
          f" weights identical to the uninterrupted run")
    print(f"{launcher}: seconds after scancel --signal=USR1: SIGUSR1 at both ranks "
          f"{t_forwarded - t_signal:.2f} (ranks frozen until then); checkpoint written and step "
          f"exited 75 after {exited - t_forwarded:.2f} more; requeued {requeued - t_signal:.2f}; "
          f"restarted {restarted - t_signal:.2f}; finished {t_end - t_signal:.2f}")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "srun"
    if which not in ("srun", "mpirun"):
        print(f"usage: {sys.argv[0]} [srun|mpirun]")
        sys.exit(2)
    s.main(lambda work: test(work, which))
