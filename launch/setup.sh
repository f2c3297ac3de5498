#!/usr/bin/env bash
# Installs the Debian packages kdgrid needs (only the missing ones; silent when all are
# present) and builds build/kdgrid. Idempotent: run it as often as you like.
#   launch/setup.sh            # packages + build
#   KDGRID_BUILD_DIR=dir launch/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  build-essential cmake pkg-config
  # libraries
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libboost-program-options-dev libdnnl-dev
  nlohmann-json3-dev libpcre2-dev libfmt-dev libssl-dev libgtest-dev
  # sample corpus, augmentation
  fortunes fortunes-min wordnet-base apertium apertium-eng-spa apertium-eng-cat
  # reference readers and golden tests (Debian's python3, not a pyenv one)
  python3-h5py python3-numpy python3-torch
  # tests/hf/venv.sh: transformers from PyPI in a venv over Debian's torch
  python3-venv python3-pip
  # the OpenMP build of OpenBLAS: the fastest BLAS for Debian's torch here, which
  # bench/bench_train_vs_torch.sh compares against (loaded through LD_LIBRARY_PATH there; the
  # system's libblas.so.3 alternative stays as Debian chose it)
  libopenblas0-openmp
  # cluster operations and plots
  slurm-wlm munge gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

build="${KDGRID_BUILD_DIR:-build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
  grep "kdgrid:" "$build.configure.log" || true
  rm -f "$build.configure.log"
fi
echo "setup: building $build/kdgrid (log: $build/build.log)"
if ! cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1; then
  grep -E "error|Error" -A3 "$build/build.log" | head -60 >&2
  echo "setup: build failed, see $build/build.log" >&2
  exit 1
fi
