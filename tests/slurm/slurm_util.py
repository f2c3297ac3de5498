"""Helpers for the tests that submit kdgrid's batch scripts (slurm/) to the one-node test cluster
that tests/slurm/cluster.sh starts (the CTest fixture `slurm_cluster`).

Environment: KDGRID_BIN (the binary), KDGRID_SOURCE_DIR (the repository), KDGRID_SLURM_STATE
(the cluster's state file, which exports SLURM_CONF). Jobs this module submits are cancelled when
the test exits, passed or failed."""
import atexit
import fcntl
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kdgrid_cli_util as k  # noqa: E402  (tests/kdgrid_cli_util.py)

SOURCE_DIR = os.environ.get("KDGRID_SOURCE_DIR", "")
SLURM_DIR = os.path.join(SOURCE_DIR, "slurm")
# Guards against a hung cluster, so a broken test fails instead of waiting forever. Not a
# performance expectation: jobs here take seconds.
GUARD_S = 150
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
_submitted = []


def _load_cluster():
    state = os.environ.get("KDGRID_SLURM_STATE")
    k.check(state and os.path.exists(state),
            f"no test cluster: KDGRID_SLURM_STATE={state!r} (the slurm_cluster fixture starts it)")
    with open(state) as f:
        for line in f:
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export" and words[1].startswith("SLURM_CONF="):
                os.environ["SLURM_CONF"] = words[1][len("SLURM_CONF="):]
    k.check("SLURM_CONF" in os.environ, f"{state} names no SLURM_CONF")
    # The batch scripts find slurm/ and the binary through these (slurm/env.sh).
    os.environ["KDGRID_SLURM_DIR"] = SLURM_DIR
    os.environ["KDGRID_BIN"] = os.path.abspath(k.BIN)


def _cancel_all():
    for job in _submitted:
        subprocess.run(["scancel", job], capture_output=True)


def _dump_logs(work):
    """On failure: the jobs' output files and the end of the cluster's daemon logs."""
    for root, _, files in os.walk(work):
        for name in sorted(files):
            if name.endswith(".out"):
                print(f"--- {os.path.join(root, name)}:\n{read(os.path.join(root, name))}")
    log_dir = os.path.join(os.path.dirname(os.environ["SLURM_CONF"]), "log")
    for name in ("slurmctld.log", "slurmd.log"):
        lines = read(os.path.join(log_dir, name)).splitlines()[-40:]
        print(f"--- {name} (last {len(lines)} lines):\n" + "\n".join(lines))


def main(test):
    _load_cluster()
    atexit.register(_cancel_all)

    def test_with_logs(work):
        try:
            test(work)
        except k.TestFailure:
            _dump_logs(work)
            raise
    k.main(test_with_logs)


def sbatch(args, cwd, env=None):
    """Runs `sbatch --parsable ARGS` in cwd; returns the job id (cancelled at exit)."""
    r = subprocess.run(["sbatch", "--parsable"] + [str(a) for a in args], cwd=cwd, env=env,
                       capture_output=True, text=True)
    k.check(r.returncode == 0, f"sbatch {args} exited {r.returncode}: {r.stderr}")
    job = r.stdout.strip().split(";")[0]
    _submitted.append(job)
    return job


def job_info(job):
    """`scontrol show job -o JOB` as a dict (for an array: its first task's line)."""
    r = subprocess.run(["scontrol", "show", "job", "-o", str(job)], capture_output=True, text=True)
    k.check(r.returncode == 0, f"scontrol show job {job}: {r.stderr}")
    line = r.stdout.strip().splitlines()[0]
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line))


def array_states(job):
    """{array task id: JobState} of a job array."""
    r = subprocess.run(["scontrol", "show", "job", "-o", str(job)], capture_output=True, text=True)
    k.check(r.returncode == 0, f"scontrol show job {job}: {r.stderr}")
    states = {}
    for line in r.stdout.strip().splitlines():
        info = dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line))
        for task in expand_task_ids(info.get("ArrayTaskId", "")):
            states[task] = info["JobState"]
    return states


def expand_task_ids(spec):
    """'0-2,5%2' -> [0, 1, 2, 5] (scontrol folds pending array tasks into one line)."""
    ids = []
    for part in spec.split("%")[0].split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        ids.extend(range(int(lo), int(hi or lo) + 1))
    return ids


def wait_until(predicate, what, guard_s=GUARD_S, poll_s=0.1):
    """Polls predicate() until it returns something true; fails after guard_s seconds."""
    end = time.monotonic() + guard_s
    while True:
        value = predicate()
        if value:
            return value
        k.check(time.monotonic() < end, f"gave up waiting for {what} after {guard_s} s")
        time.sleep(poll_s)


def wait_job(job, log=None):
    """Waits until a job has ended; returns its scontrol fields. Prints its log on failure."""
    info = wait_until(lambda: (lambda i: i if i["JobState"] in FINAL_STATES else None)(job_info(job)),
                      f"job {job} to end")
    if info["JobState"] != "COMPLETED" and log:
        print(read(log))
    return info


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def metric_lines(run_dir):
    return read(os.path.join(run_dir, "metrics.jsonl")).count("\n")


def rank_pids(job):
    """PIDs of the kdgrid ranks of a Slurm job on this node: processes running KDGRID_BIN
    whose environment holds SLURM_JOB_ID=job."""
    binary = os.path.realpath(os.environ["KDGRID_BIN"])
    needle = f"SLURM_JOB_ID={job}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.path.realpath(f"/proc/{entry}/exe") != binary:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def proc_state(pid):
    """The one-letter state of /proc/PID/stat (R, S, T, Z, ...), or '' when gone."""
    stat = read(f"/proc/{pid}/stat")
    return stat[stat.rindex(")") + 2] if stat else ""


def signal_pending(pid, sig):
    """True when `sig` is pending for the process (thread or process-wide pending set)."""
    bit = 1 << (sig - 1)
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & bit:
            return True
    return False


def stop_ranks(pids):
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: all(proc_state(p) == "T" for p in pids), f"ranks {pids} to stop")


def continue_ranks(pids):
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def log_times(log):
    """The timestamped lines of slurm/lib.sh in a job's output: [(seconds since the epoch, text)]."""
    out = []
    for m in re.finditer(r"^kdgrid-slurm (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+): (.*)$", read(log),
                         re.M):
        out.append((time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")) +
                    float("0" + m.group(1)[19:]), m.group(2)))
    return out


def write_config(path, options):
    """An INI file for `--config`: one `name = value` line per option."""
    with open(path, "w") as f:
        for name, value in options.items():
            f.write(f"{name} = {value}\n")


class MetricsGate:
    """Makes RUN_DIR/metrics.jsonl a named pipe that this test reads, so that the run can get at
    most a few steps ahead of the test, whatever the machine's speed.

    The pipe's buffer is shrunk to one page (4096 bytes, ~15 metrics lines) and kept (the test
    holds a writer end open too, so the pipe lives across the job's restarts). A reader thread
    reads byte by byte until `pause_after` lines have arrived, then stops reading until
    release(): rank 0 then blocks in its next write once the page is full, and every other rank
    in the step's collectives. finish() (after the job has ended) puts the lines read into a
    regular metrics.jsonl again."""

    def __init__(self, run_dir, pause_after):
        self.path = os.path.join(run_dir, "metrics.jsonl")
        os.makedirs(run_dir, exist_ok=True)
        os.mkfifo(self.path)
        self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._write_fd = os.open(self.path, os.O_WRONLY)
        fcntl.fcntl(self._read_fd, fcntl.F_SETPIPE_SZ, 4096)
        os.set_blocking(self._read_fd, True)
        self._pause_after = pause_after
        self._data = bytearray()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while True:
            paused = not self._released.is_set()
            chunk = os.read(self._read_fd, 1 if paused else 65536)
            if not chunk:
                return  # every writer closed: the job has ended and finish() closed ours
            with self._lock:
                self._data += chunk
                full = self._data.count(b"\n") >= self._pause_after
            if paused and full:
                self._released.wait()

    def lines(self):
        with self._lock:
            return self._data.count(b"\n")

    def release(self):
        self._released.set()

    def finish(self):
        self.release()
        os.close(self._write_fd)
        self._thread.join(timeout=GUARD_S)
        k.check(not self._thread.is_alive(), f"{self.path}: a writer still holds the pipe open")
        os.close(self._read_fd)
        os.remove(self.path)
        with open(self.path, "wb") as f:
            f.write(self._data)
