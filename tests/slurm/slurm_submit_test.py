#!/usr/bin/python3
"""slurm/train.sbatch on the test cluster: the grid comes from the allocation and the
environment, and both launchers finish the run.

Three jobs of one tiny fp32 config: (1) 2 tasks with srun (dp=2 derived by kdgrid), (2) 4 tasks
with KDGRID_PP=2 (dp=2, pp=2), (3) 2 tasks with KDGRID_LAUNCHER=mpirun. Each must complete (exit
0), log its restart count 0 and its grid, leave `latest` = the final step, a model.h5 of that
step and one metrics line per step. Jobs (1) and (3) run the same grid, so their final weights
must agree bit for bit: the launcher changes nothing in the numbers. A config file that does not
exist fails the job with exit 2.

usage: slurm_submit_test.py   (KDGRID_BIN, KDGRID_SOURCE_DIR, KDGRID_SLURM_STATE set by CTest)
"""
import os

import slurm_util as s
from slurm_util import k

STEPS = 6
VOCAB = 97


def test(work):
    data = os.path.join(work, "data")
    k.write_token_shard(os.path.join(data, "tokens_000.h5"), k.random_tokens(4000, VOCAB, 7), VOCAB)
    config = os.path.join(work, "tiny.ini")
    s.write_config(config, {"data": data, "steps": STEPS, "n-layer": 2, "n-head": 2,
                            "d-model": 32, "max-seq": 16, "batch-size": 2, "seed": 5,
                            "lr": 1e-3, "precision": "fp32"})
    script = os.path.join(s.SLURM_DIR, "train.sbatch")
    env = dict(os.environ)
    jobs = {
        "srun": (s.sbatch([script, config, "--run-dir", "run-srun"], work), "dp=2 pp=1 tp=1"),
        "pp2": (s.sbatch(["--ntasks=4", script, config, "--run-dir", "run-pp2"], work,
                         dict(env, KDGRID_PP="2")), "dp=2 pp=2 tp=1"),
        "mpirun": (s.sbatch([script, config, "--run-dir", "run-mpirun"], work,
                            dict(env, KDGRID_LAUNCHER="mpirun")), "dp=2 pp=1 tp=1"),
    }
    missing = s.sbatch([script, os.path.join(work, "no-such.ini")], work)

    for name, (job, grid) in jobs.items():
        log = os.path.join(work, f"kdgrid-train-{job}.out")
        info = s.wait_job(job, log)
        k.check(info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0",
                f"{name}: job {job} ended {info['JobState']} exit {info['ExitCode']}")
        text = s.read(log)
        k.check("SLURM_RESTART_COUNT=0" in text, f"{name}: no restart count in the log:\n{text}")
        k.check(f"grid {grid}" in text, f"{name}: the log does not show grid {grid}:\n{text}")
        run_dir = os.path.join(work, f"run-{name}")
        final = k.latest(run_dir)
        k.check(os.path.basename(final) == f"step_{STEPS:08d}", f"{name}: latest is {final}")
        k.check(os.path.exists(os.path.join(final, "model.h5")), f"{name}: no model.h5 in {final}")
        k.check([m["step"] for m in k.metrics(run_dir)] == list(range(1, STEPS + 1)),
                f"{name}: metrics.jsonl steps {[m['step'] for m in k.metrics(run_dir)]}")
        print(f"{name}: job {job} completed, {grid}, latest {os.path.basename(final)}")

    k.assert_same_datasets(os.path.join(k.latest(os.path.join(work, "run-srun")), "model.h5"),
                           os.path.join(k.latest(os.path.join(work, "run-mpirun")), "model.h5"),
                           "srun vs mpirun model.h5")
    print("srun and mpirun runs: identical final weights")

    info = s.wait_job(missing)
    text = s.read(os.path.join(work, f"kdgrid-train-{missing}.out"))
    k.check(info["ExitCode"] == "2:0" and "no-such.ini" in text,
            f"a missing config: exit {info['ExitCode']}, log:\n{text}")


if __name__ == "__main__":
    s.main(test)
