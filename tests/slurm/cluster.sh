#!/usr/bin/env bash
# A one-node Slurm cluster for the tests, built from nothing in a temporary directory: a munge
# key and munged, a slurm.conf, slurmctld and slurmd (Debian's slurm-wlm and munge). Run as root.
#
#   tests/slurm/cluster.sh start STATE_FILE   # prints nothing; writes STATE_FILE (see below)
#   tests/slurm/cluster.sh stop STATE_FILE    # stops the daemons by PID, removes the directory
#
# STATE_FILE is a shell fragment to source: it exports SLURM_CONF (the clients' configuration)
# and names the cluster directory and daemon PIDs. `start` first stops a cluster that an earlier,
# interrupted run left behind in the same STATE_FILE. The node declares CPUs=8 whatever the
# machine has (SlurmdParameters=config_overrides), so jobs of up to 8 ranks fit; Open MPI then
# needs OMPI_MCA_mpi_yield_when_idle=1 (slurm/env.sh sets it).
set -Eeuo pipefail

readonly kCpus=8
readonly kStartTimeout=60  # seconds for the node to come up idle

die() { echo "cluster.sh: $*" >&2; exit 1; }

# Two free TCP ports on the loopback interface (the kernel picks them).
freePorts() {
  /usr/bin/python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# True while PID is a live (not zombie) process.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Stops the daemons named in the state file (slurmd, slurmctld, munged: each by its PID, TERM
# then KILL after 10 s) and removes the cluster directory.
stopCluster() {
  local state_file=$1
  [ -f "$state_file" ] || return 0
  local CLUSTER_DIR="" SLURMD_PID="" SLURMCTLD_PID="" MUNGED_PID=""
  # shellcheck disable=SC1090
  source "$state_file"
  local pid
  # Jobs first, while the daemons still run: their batch scripts and ranks end normally.
  if [ -n "$SLURMCTLD_PID" ] && alive "$SLURMCTLD_PID"; then
    SLURM_CONF=$CLUSTER_DIR/slurm.conf timeout 10 scancel --quiet --user="$(id -un)" || true
  fi
  for pid in $SLURMD_PID $SLURMCTLD_PID $MUNGED_PID; do
    # Only a process that still runs the daemon binary this cluster started (PIDs get reused).
    if alive "$pid" && grep -qaF "$CLUSTER_DIR" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Whatever the daemons left behind: slurmstepd processes and the tasks of jobs, which carry
  # this cluster's configuration path (and a job id) in their environment. A shell of the user's
  # that merely exported SLURM_CONF has no job id and is left alone.
  local environ
  for environ in $(grep -laF "SLURM_CONF=$CLUSTER_DIR/slurm.conf" /proc/[0-9]*/environ \
                   2>/dev/null); do
    pid=$(cut -d/ -f3 <<<"$environ")
    [ "$pid" != $$ ] || continue
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slurmstepd ] ||
       tr '\0' '\n' <"$environ" 2>/dev/null | grep -q '^SLURM_JOB_ID='; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  case "$CLUSTER_DIR" in
    */kdgrid-slurm.*) rm -rf "$CLUSTER_DIR" ;;
  esac
  rm -f "$state_file"
}

startCluster() {
  local state_file=$1
  stopCluster "$state_file"
  for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
    command -v "$tool" >/dev/null || die "$tool not found: install Debian's slurm-wlm and munge (launch/setup.sh)"
  done
  [ "$(id -u)" -eq 0 ] || die "needs root (slurmd starts jobs as their user; munged as root)"

  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/kdgrid-slurm.XXXXXX")
  chmod 711 "$dir"  # munged wants clients able to reach its socket
  # From here on, a failure tears down whatever was started.
  printf 'export SLURM_CONF=%q\nCLUSTER_DIR=%q\n' "$dir/slurm.conf" "$dir" >"$state_file"
  trap 'echo "cluster.sh: start failed; logs:" >&2; tail -n 20 "$dir"/log/* >&2 || true;
        stopCluster "$state_file"' ERR

  mkdir -p "$dir"/{munge,state,spool,log}
  chmod 755 "$dir/munge"
  # munge: a fresh key and a daemon with every path under the cluster directory.
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  local socket=$dir/munge/munge.socket
  munged --foreground --force --socket="$socket" --key-file="$dir/munge/munge.key" \
    --log-file="$dir/log/munged.log" --pid-file="$dir/munge/munged.pid" \
    --seed-file="$dir/munge/munged.seed" >>"$dir/log/munged.log" 2>&1 </dev/null &
  echo "MUNGED_PID=$!" >>"$state_file"
  for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
  [ -S "$socket" ] || { echo "cluster.sh: munged did not start" >&2; false; }

  local ports ctld_port slurmd_port host
  ports=$(freePorts)
  ctld_port=${ports% *}
  slurmd_port=${ports#* }
  host=$(hostname -s)
  cat >"$dir/slurm.conf" <<CONF
# One-node test cluster written by tests/slurm/cluster.sh.
ClusterName=kdgridtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
SchedulerType=sched/builtin
# A pass over pending jobs every 2 s (default 60): a requeued job starts as soon as it is eligible.
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
InactiveLimit=0
KillWait=30
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$kCpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -D -i -f "$SLURM_CONF" >>"$dir/log/slurmctld.out" 2>&1 </dev/null &
  echo "SLURMCTLD_PID=$!" >>"$state_file"
  slurmd -D -f "$SLURM_CONF" >>"$dir/log/slurmd.out" 2>&1 </dev/null &
  echo "SLURMD_PID=$!" >>"$state_file"

  local state=""
  for _ in $(seq $((kStartTimeout * 5))); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1) || true
    [ "$state" = idle ] && break
    sleep 0.2
  done
  [ "$state" = idle ] || { echo "cluster.sh: node state '$state' after ${kStartTimeout}s" >&2; false; }
  trap - ERR
}

case "${1:-}" in
  start) [ $# -eq 2 ] || die "usage: cluster.sh start STATE_FILE"; startCluster "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: cluster.sh stop STATE_FILE"; stopCluster "$2" ;;
  *) die "usage: cluster.sh start|stop STATE_FILE" ;;
esac
