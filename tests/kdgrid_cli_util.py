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

import h5py
import numpy as np

BIN = os.environ.get("KDGRID_BIN")
MPIEXEC = os.environ.get("KDGRID_MPIEXEC") or shutil.which("mpirun") or "mpirun"
# Any fixed 64-hex string: shards of one test share it, so they mix and checkpoints agree.
SHA = "3f" * 32
# Open MPI prints this banner when a job ends through MPI_Abort.
ABORT_BANNER = "MPI_ABORT"


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


def run_and_signal(args, np_=1, sig=signal.SIGUSR1, after="run directory"):
    """Starts kdgrid, sends `sig` as soon as stderr shows a line containing `after` (train
    logs its run directory once every rank has installed its stop handlers), and returns
    (exit code, stderr). Ordering only, no timing: the signal is sent after that line."""
    p = subprocess.Popen(command(args, np_), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    lines, sent = [], False
    for line in p.stderr:
        lines.append(line)
        if not sent and after in line:
            p.send_signal(sig)
            sent = True
    rc = p.wait()
    check(sent, f"never saw '{after}' on stderr:\n{''.join(lines)}")
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
