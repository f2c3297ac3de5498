# Environment for kdgrid jobs: sourced by every script in slurm/ (and handy in an interactive
# shell or under salloc). Each setting keeps a value already in the environment, so a user
# overrides any of them with `export NAME=value` before sbatch (sbatch passes the submitting
# shell's environment to the job). Paths are relative to the job's working directory, which is
# the directory sbatch was called from (submit from the repository root).

# --- kdgrid ---
# The binary, and the folder holding these scripts (the job runs a copy of the batch script
# from Slurm's spool directory, so it cannot find its own folder).
: "${KDGRID_BIN:=build/kdgrid}"
: "${KDGRID_SLURM_DIR:=slurm}"
# How the ranks are started: `srun` (Slurm's launcher; --mpi=pmix for Open MPI, since pmi2 does
# not work with Debian's Open MPI) or `mpirun` (Open MPI reads the allocation itself).
: "${KDGRID_LAUNCHER:=srun}"
: "${KDGRID_SRUN_MPI:=pmix}"
# Requeue: a job that checkpointed on SIGUSR1 requeues itself and asks to start again this many
# seconds later (Slurm otherwise holds a requeued job ~2 minutes; see slurm/lib.sh).
: "${KDGRID_REQUEUE_DELAY:=3}"
export KDGRID_BIN KDGRID_SLURM_DIR KDGRID_LAUNCHER KDGRID_SRUN_MPI KDGRID_REQUEUE_DELAY
# Read when set (no defaults here):
#   KDGRID_PP, KDGRID_TP    pipeline / tensor parallel degrees for the model commands (else the
#                           config's; dp = ranks / (pp * tp))
#   KDGRID_MPIRUN_ARGS      extra mpirun options, e.g. "--bind-to core --map-by socket"
#   KDGRID_NP               ranks when a script runs outside Slurm (bash slurm/train.sbatch ...)
#   KDGRID_SWEEP_DIR        set by slurm/sweep.sh for its array tasks

# --- threads ---
# One OpenMP thread per CPU given to each rank (sbatch --cpus-per-task), else 1.
: "${OMP_NUM_THREADS:=${SLURM_CPUS_PER_TASK:-1}}"
export OMP_NUM_THREADS

# --- Open MPI ---
# Ranks waiting in a collective yield the CPU instead of spinning. Essential when a node
# declares more CPUs than it has cores (collectives get ~10x slower otherwise); a small cost on
# nodes with a core per rank.
: "${OMPI_MCA_mpi_yield_when_idle:=1}"
export OMPI_MCA_mpi_yield_when_idle
# Do not exclude the openib BTL by hand (--mca btl ^openib): on Debian's Open MPI 4.1 that
# re-enables the ofi components and adds ~1.4 s to every start.
# Slow or multi-homed clusters: choose the TCP interface of the ranks' traffic, e.g.
# export OMPI_MCA_btl_tcp_if_include=ib0

# --- HDF5 ---
# Parallel file systems without POSIX locks (Lustre mounted without flock, some NFS) make HDF5's
# file locking fail; checkpoints are written by one job at a time, so the lock adds nothing.
: "${HDF5_USE_FILE_LOCKING:=FALSE}"
export HDF5_USE_FILE_LOCKING

# --- NCCL (CUDA builds) ---
# Warnings and errors only; set INFO to see the transports and rings NCCL chose.
: "${NCCL_DEBUG:=WARN}"
export NCCL_DEBUG
# Multi-node jobs on hosts with several network interfaces: pin NCCL's bootstrap and socket
# traffic to the cluster network, and name the InfiniBand adapters when there are several:
# export NCCL_SOCKET_IFNAME=ib0
# export NCCL_IB_HCA=mlx5_0,mlx5_1
# Without InfiniBand (or to rule it out while debugging):
# export NCCL_IB_DISABLE=1
