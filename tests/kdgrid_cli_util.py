"""Helpers for the Python tests that drive the real `kdgrid` binary (Debian /usr/bin/python3 with
h5py and numpy). The binary is $KDGRID_BIN; mpirun is taken from $KDGRID_MPIEXEC (CTest passes
the one CMake found) or PATH. Shards are written here with h5py, as any tool may write them
(DESIGN section 6)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import h5py
import numpy as np

BIN = os.environ.get("KDGRID_BIN")
MPIEXEC = os.environ.get("KDGRID_MPIEXEC") or shutil.which("mpirun") or "mpirun"
# Any fixed 64-hex string: shards of one test share it, so they mix and checkpoints agree.
SHA = "3f" * 32
# Open MPI prints this banner when a job ends through MPI_Abort.
ABORT_BANNER = "MPI_ABORT"


def use_test_binary():
    """Runs $KDGRID_TEST_BIN (build/kdgrid-test: kdgrid plus the test hooks of tests/test_hooks.h,
    e.g. the KDGRID_TEST_* fault injection) instead of $KDGRID_BIN from here on."""
    global BIN
    BIN = os.environ.get("KDGRID_TEST_BIN")
    if not BIN:
        print("FAIL: KDGRID_TEST_BIN is not set")
        sys.exit(1)


class TestFailure(Exception):
    pass


def fail(message):
    raise TestFailure(message)


def check(condition, message):
    if not condition:
        fail(message)


def main(test):
    """Runs test(workdir) in a fresh temporary directory; prints PASS or FAIL, exits 0 or 1."""
    if not BIN:
        print("FAIL: KDGRID_BIN is not set")
        sys.exit(1)
    work = tempfile.mkdtemp(prefix="kdgrid-" + os.path.basename(sys.argv[0]).split(".")[0] + "-")
    try:
        test(work)
    except TestFailure as e:
        print(f"FAIL: {e}")
        sys.exit(1)
    finally:
        if not os.environ.get("KDGRID_KEEP_TEST_DIRS"):
            shutil.rmtree(work, ignore_errors=True)
    print("PASS")


# Collecting checks, for the tests that report every failed check before they exit:
# soft_check records a failure and goes on; exit_if_failed ends the test.
FAILURES = []


def soft_check(condition, message):
    if not condition:
        FAILURES.append(message)
        print("FAIL:", message)


def exit_if_failed():
    if FAILURES:
        print(f"{len(FAILURES)} checks failed")
        sys.exit(1)
    print("all checks passed")


def run_argv(args, expect_rc=0, env=None):
    """Runs argv (any command); stops the test unless it exits expect_rc (None: any).
    Returns (exit code, stdout + stderr as text)."""
    proc = subprocess.run(args, capture_output=True, env=env)
    out = proc.stdout.decode() + proc.stderr.decode()
    if expect_rc is not None and proc.returncode != expect_rc:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}, expected {expect_rc}:\n{out}")
    return proc.returncode, out


def write_text_shard(path, docs):
    """A kdgrid-text shard (DESIGN section 6) holding the byte strings `docs`."""
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype(np.uint64)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "kdgrid-text"
        f.attrs["format_version"] = 1
        f["text/bytes"] = np.frombuffer(b"".join(docs), dtype=np.uint8)
        f["text/offsets"] = offsets


def write_token_shard(path, tokens, vocab_size, eot_token=None, sha=SHA, doc_offsets=None):
    """A kdgrid-tokens shard (DESIGN section 6) holding `tokens` (one document by default)."""
    tokens = np.asarray(tokens)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "kdgrid-tokens"
        f.attrs["format_version"] = 1
        f.attrs["vocab_size"] = vocab_size
        f.attrs["eot_token"] = vocab_size - 1 if eot_token is None else eot_token
        f.attrs["tokenizer_sha256"] = sha
        dtype = np.uint16 if vocab_size <= 65536 else np.uint32
        f.create_dataset("tokens", data=tokens.astype(dtype))
        offsets = [0, len(tokens)] if doc_offsets is None else doc_offsets
        f.create_dataset("doc_offsets", data=np.asarray(offsets, dtype=np.uint64))


def random_tokens(n, vocab_size, seed):
    return np.random.default_rng(seed).integers(0, vocab_size, n)


def command(args, np_=1):
    """The argv running `kdgrid ARGS` on np_ ranks (mpirun only when np_ > 1)."""
    args = [str(a) for a in args]
    if np_ == 1:
        return [BIN] + args
    return [MPIEXEC, "-np", str(np_), BIN] + args


def run(args, np_=1, expect=0, needle=None):
    """Runs kdgrid, checks the exit code (and that stderr names `needle`); returns the result
    (stdout and stderr as text)."""
    r = subprocess.run(command(args, np_), capture_output=True, text=True)
    if expect is not None and r.returncode != expect:
        fail(f"`kdgrid {' '.join(map(str, args))}` on {np_} rank(s) exited {r.returncode}, "
             f"expected {expect}\n--- stdout:\n{r.stdout}\n--- stderr:\n{r.stderr}")
    if needle is not None and needle not in r.stderr:
        fail(f"`kdgrid {' '.join(map(str, args))}`: stderr does not name '{needle}':\n{r.stderr}")
    return r


def _rank_pids(mpirun_pid):
    """The pids of the processes mpirun started (the ranks: its children on one node)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may hold spaces.
        if int(stat[stat.rindex(")") + 2:].split()[1]) == mpirun_pid:
            pids.append(int(entry))
    return pids


def train_stopped_by_signal(args, run_dir, np_=1, sig=signal.SIGUSR1):
    """Runs `kdgrid train ARGS` and delivers `sig` to every rank before its first step can end,
    without depending on timing; returns (exit code, stderr).

    The gate is run_dir/metrics.jsonl, made a named pipe: rank 0 opens it (to append) after
    its stop handlers are installed and before the first step, and opening a pipe for writing
    blocks until a reader opens it. The signal is sent once train has logged its run directory
    (every rank has installed its handlers by then: a barrier precedes that line), straight to
    the ranks (kill() makes it pending at once; mpirun would forward it asynchronously), and only
    then is the pipe opened. So the first step ends with the stop requested on every rank. The
    lines read from the pipe are appended to the metrics.jsonl that was there before."""
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    before = ""
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            before = f.read()
        os.remove(metrics_path)
    os.makedirs(run_dir, exist_ok=True)
    os.mkfifo(metrics_path)
    p = subprocess.Popen(command(args, np_), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if "run directory" in line:
            break
    else:
        p.wait()
        os.remove(metrics_path)
        fail(f"train never logged its run directory:\n{''.join(lines)}")
    for pid in [p.pid] if np_ == 1 else _rank_pids(p.pid):
        os.kill(pid, sig)

    def unblock_if_exited():
        # Should kdgrid end without ever opening the pipe, open it for writing ourselves so
        # that the reader below gets end-of-file instead of waiting forever.
        p.wait()
        try:
            os.close(os.open(metrics_path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # no reader waiting: it has finished already

    watchdog = threading.Thread(target=unblock_if_exited, daemon=True)
    watchdog.start()
    with open(metrics_path) as f:  # unblocks rank 0; ends when it closes the file
        new = f.read()
    lines += p.stderr.readlines()
    rc = p.wait()
    watchdog.join()
    os.remove(metrics_path)
    with open(metrics_path, "w") as f:
        f.write(before + new)
    return rc, "".join(lines)


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def latest(run_dir):
    with open(os.path.join(run_dir, "checkpoints", "latest")) as f:
        return os.path.join(run_dir, "checkpoints", f.read().strip())


def step_dir(run_dir, step):
    return os.path.join(run_dir, "checkpoints", f"step_{step:08d}")


def datasets(path):
    """Every dataset of an HDF5 file: {name: numpy array}."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def root_attrs(path):
    with h5py.File(path, "r") as f:
        return {k: f.attrs[k] for k in f.attrs}


def assert_same_datasets(a, b, what):
    """Bit-exact equality of every dataset (names, dtypes, shapes and bytes)."""
    da, db = datasets(a), datasets(b)
    check(sorted(da) == sorted(db), f"{what}: dataset names differ: {sorted(da)} vs {sorted(db)}")
    for name in da:
        x, y = da[name], db[name]
        check(x.dtype == y.dtype and x.shape == y.shape, f"{what}: {name} dtype/shape differ")
        check(x.tobytes() == y.tobytes(), f"{what}: dataset {name} differs")
    return da


# Quiet mpirun as root on a shared machine with fewer cores than ranks (CTest sets the same).
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
os.environ.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
