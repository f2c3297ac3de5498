# Shared body of the kdgrid batch scripts (sourced after slurm/env.sh). A batch script calls
#
#   kdgridSlurmRun SUBCOMMAND GRID CONFIG [kdgrid flags...]
#
# which runs `kdgrid SUBCOMMAND --config CONFIG [flags]` on every task of the allocation and
# returns the job's exit code. GRID is `grid` for the model commands (train, distill,
# teacher-logits): world = SLURM_NTASKS, --pp/--tp from $KDGRID_PP/$KDGRID_TP when set (else the
# config's), and kdgrid derives dp = world / (pp * tp). Data commands pass `nogrid`.
#
# Stopping and requeueing (DESIGN sections 2 and 3): kdgrid saves a checkpoint and exits 75 on
# SIGUSR1. The batch shell traps
#   USR1 (Slurm's --signal=B:USR1@SECONDS timer before the time limit, or
#        `scancel --signal=USR1 --batch JOB`):  stop with a checkpoint, then requeue the job;
#   TERM, INT (`scancel --signal=TERM --batch JOB`, or the whole job cancelled):
#        stop with a checkpoint, do not requeue;
# and passes SIGUSR1, never TERM, to the launcher: srun forwards it to the tasks and Open MPI's
# mpirun to the ranks, while mpirun answers TERM by killing the ranks without a checkpoint.
# When the step exits 75 after a USR1, the script requeues its own job. The restarted job
# (SLURM_RESTART_COUNT=1, 2, ...) runs the same command, and kdgrid resumes from the run
# directory's `latest` checkpoint by default: no user action.
#
# Sweeps (slurm/sweep.sh): in a job array with $KDGRID_SWEEP_DIR set, array task I adds
# `--run-dir $KDGRID_SWEEP_DIR/runs/NAME` and its options from row I of
# $KDGRID_SWEEP_DIR/sweep.tsv.
#
# Outside Slurm (no SLURM_JOB_ID) the same script runs on a workstation: `bash slurm/train.sbatch
# CONFIG` with KDGRID_LAUNCHER=mpirun and KDGRID_NP ranks; a signal then stops with a checkpoint
# (exit 75) and running the command again resumes.

# kdgridNote MESSAGE: one timestamped line in the job's output.
kdgridNote() {
  printf 'kdgrid-slurm %s: %s\n' "$(date '+%F %T.%3N')" "$*"
}

# What the batch shell was asked to do on a signal: "" (nothing yet), requeue or stop.
_kdgrid_stop_request=""
_kdgrid_step_pid=""

# Trap handler: record the request and pass SIGUSR1 to the launcher (a stop wins over a requeue).
_kdgridOnSignal() {
  local sig=$1
  if [ "$sig" = USR1 ]; then
    [ "$_kdgrid_stop_request" = stop ] || _kdgrid_stop_request=requeue
  else
    _kdgrid_stop_request=stop
  fi
  if [ -n "$_kdgrid_step_pid" ]; then
    kdgridNote "SIG$sig: asking the ranks to checkpoint and stop (SIGUSR1 to $KDGRID_LAUNCHER," \
      "pid $_kdgrid_step_pid); then $_kdgrid_stop_request"
    kill -USR1 "$_kdgrid_step_pid" 2>/dev/null || true
  else
    kdgridNote "SIG$sig before the ranks started: $_kdgrid_stop_request without running"
  fi
}

# Requeues this job to start again in KDGRID_REQUEUE_DELAY seconds; exits 75.
_kdgridRequeue() {
  # `scontrol requeue` ends this instance of the job (SIGTERM to the batch shell, SIGKILL after
  # the cluster's KillWait); finish the two calls below first.
  trap '' USR1 TERM INT
  if [ -z "${SLURM_JOB_ID:-}" ]; then
    kdgridNote "stopped after a checkpoint (exit 75); run the same command again to resume"
    exit 75
  fi
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    kdgridNote "scontrol requeue $SLURM_JOB_ID failed (the cluster may forbid requeueing);" \
      "submit the same command again to resume from the checkpoint"
    exit 75
  fi
  # Slurm holds a requeued job until its old credentials expire (~2 minutes) unless it already
  # has a begin time in the future when this instance ends; this instance ends moments after
  # this call, so the restart becomes eligible KDGRID_REQUEUE_DELAY seconds from now and the
  # scheduler starts it on its next pass.
  scontrol update JobId="$SLURM_JOB_ID" StartTime="now+${KDGRID_REQUEUE_DELAY}" ||
    kdgridNote "could not set the restart's start time; Slurm will start it in ~2 minutes"
  kdgridNote "requeued job $SLURM_JOB_ID (restart $((${SLURM_RESTART_COUNT:-0} + 1)) becomes" \
    "eligible in ${KDGRID_REQUEUE_DELAY} s)"
  exit 75
}

# Sets the array _kdgrid_sweep_args from this array task's row of the sweep table.
_kdgridSweepArgs() {
  _kdgrid_sweep_args=()
  [ -n "${KDGRID_SWEEP_DIR:-}" ] || return 0
  if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
    kdgridNote "KDGRID_SWEEP_DIR is set but this is not a job array task; ignoring it"
    return 0
  fi
  local table=$KDGRID_SWEEP_DIR/sweep.tsv row name options
  row=$(awk -F'\t' -v id="$SLURM_ARRAY_TASK_ID" 'NR > 1 && $1 == id' "$table") || row=""
  if [ -z "$row" ]; then
    kdgridNote "error: $table has no row for array task $SLURM_ARRAY_TASK_ID"
    return 2
  fi
  IFS=$'\t' read -r _ name options <<<"$row"
  # Options are `--name value` pairs without spaces (sweep.sh checks), so word splitting is safe.
  # shellcheck disable=SC2206
  _kdgrid_sweep_args=(--run-dir "$KDGRID_SWEEP_DIR/runs/$name" $options)
}

kdgridSlurmRun() {
  local sub=$1 grid=$2 config=${3:-}
  shift 3 || true
  if [ -z "$config" ] || [ ! -r "$config" ]; then
    kdgridNote "error: config file '${config}' not readable (usage: sbatch SCRIPT CONFIG [flags])"
    return 2
  fi
  if [ ! -x "$KDGRID_BIN" ]; then
    kdgridNote "error: KDGRID_BIN=$KDGRID_BIN is not an executable (build it, or set KDGRID_BIN)"
    return 2
  fi
  local -a args=("$sub" --config "$config")
  if [ "$grid" = grid ]; then
    [ -z "${KDGRID_PP:-}" ] || args+=(--pp "$KDGRID_PP")
    [ -z "${KDGRID_TP:-}" ] || args+=(--tp "$KDGRID_TP")
  fi
  _kdgridSweepArgs || return $?
  args+=("${_kdgrid_sweep_args[@]}" "$@")

  local ntasks=${SLURM_NTASKS:-${KDGRID_NP:-1}}
  local -a launch
  case "$KDGRID_LAUNCHER" in
    srun)
      if [ -z "${SLURM_JOB_ID:-}" ]; then
        kdgridNote "error: KDGRID_LAUNCHER=srun outside a Slurm job; use KDGRID_LAUNCHER=mpirun"
        return 2
      fi
      # No --kill-on-bad-exit: ranks that saved and exit 75 must not kill the slower ones.
      launch=(srun --mpi="$KDGRID_SRUN_MPI" --kill-on-bad-exit=0 --ntasks="$ntasks") ;;
    mpirun)
      local -a extra=()
      read -r -a extra <<<"${KDGRID_MPIRUN_ARGS:-}"
      launch=(mpirun -np "$ntasks" "${extra[@]}") ;;
    *) kdgridNote "error: KDGRID_LAUNCHER=$KDGRID_LAUNCHER (use srun or mpirun)"; return 2 ;;
  esac

  kdgridNote "job ${SLURM_JOB_ID:-(none)}${SLURM_ARRAY_TASK_ID:+ array task $SLURM_ARRAY_TASK_ID}" \
    "SLURM_RESTART_COUNT=${SLURM_RESTART_COUNT:-0} on ${SLURM_JOB_NODELIST:-$(hostname)}:" \
    "$ntasks ranks: ${launch[*]} $KDGRID_BIN ${args[*]}"
  trap '_kdgridOnSignal USR1' USR1
  trap '_kdgridOnSignal TERM' TERM
  trap '_kdgridOnSignal INT' INT
  if [ "$_kdgrid_stop_request" = requeue ]; then _kdgridRequeue; fi
  if [ "$_kdgrid_stop_request" = stop ]; then return 75; fi

  "${launch[@]}" "$KDGRID_BIN" "${args[@]}" &
  _kdgrid_step_pid=$!
  # `wait` returns early (status > 128) whenever a trapped signal arrives; wait again while the
  # step still exists (a zombie counts: the next wait reaps it and returns its status).
  local rc
  while :; do
    rc=0
    wait "$_kdgrid_step_pid" || rc=$?
    if [ "$rc" -gt 128 ] && kill -0 "$_kdgrid_step_pid" 2>/dev/null; then continue; fi
    break
  done
  _kdgrid_step_pid=""
  kdgridNote "kdgrid $sub exited $rc"
  if [ "$rc" -eq 75 ] && [ "$_kdgrid_stop_request" = requeue ]; then _kdgridRequeue; fi
  return "$rc"
}
