#!/usr/bin/env bash
# The test suite's throw-away single-node SLURM (munged + slurmctld + slurmd) on loopback,
# with fake GPUs (GRES gpu backed by /dev/null-like char devices), so that `sbatch`,
# `--gpus-per-task` and dask-jobqueue's SLURMCluster meet a real scheduler.
# Everything (config, state, spool, logs, munge key/socket) lives under BASE.
#
#   usage: tests/services/slurm-up.sh [BASE]      (BASE default ${TMPDIR:-/tmp}/larvae-svc/slurm)
#   env knobs: SLURMCTLD_PORT, SLURMD_PORT (default: free ports)  FAKE_GPUS (2)  REAL_MEMORY_MB (8000)
# Needs root (slurmd runs jobs as the submitting user; SlurmUser=root here).
# The partition oversubscribes cores (OverSubscribe=FORCE:4): a 2-core test machine can hold a
# driver job and two worker jobs at once; GPUs (GRES) and memory are still allocated per job.
set -euo pipefail
BASE=${1:-${TMPDIR:-/tmp}/larvae-svc/slurm}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CTLD_PORT=${SLURMCTLD_PORT:-$(free_port)}
SLURMD_PORT=${SLURMD_PORT:-$(free_port)}
NGPU=${FAKE_GPUS:-2}
MEM=${REAL_MEMORY_MB:-8000}
HOST=$(hostname -s)          # NodeName MUST equal `hostname -s`, else slurmd refuses to start
NCPU=$(nproc)

ts() { date +%s.%N; }
T0=$(ts)
# ---------------------------------------------------------------- install
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "[slurm-up] installing slurm-wlm munge ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
fi
T1=$(ts)

for p in "$CTLD_PORT" "$SLURMD_PORT"; do
  if ss -ltn "sport = :$p" | grep -q LISTEN; then echo "[slurm-up] port $p busy" >&2; exit 1; fi
done
getent hosts "$HOST" >/dev/null || { echo "[slurm-up] '$HOST' does not resolve; add it to /etc/hosts" >&2; exit 1; }

# ---------------------------------------------------------------- layout
mkdir -p "$BASE"/{etc,state,spool/slurmd-"$HOST",log,run,munge,dev,jobs}
chmod 755 "$BASE/munge"      # munged: socket dir must be a+x (0700 => "Socket is inaccessible")
if [ ! -s "$BASE/munge/munge.key" ]; then
  dd if=/dev/urandom of="$BASE/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 400 "$BASE/munge/munge.key"
# fake GPUs: gres.conf File= must be existing device files; clone /dev/null (char 1,3).
# Names are free: CUDA_VISIBLE_DEVICES gets the device's *position* in gres.conf (0,1,..),
# not a number parsed from the file name (checked: gpuX7,gpuY3 -> 0,1).
for i in $(seq 0 $((NGPU-1))); do
  [ -e "$BASE/dev/nvidia$i" ] || mknod "$BASE/dev/nvidia$i" c 1 3
done

cat > "$BASE/etc/slurm.conf" <<EOF
ClusterName=svc
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$BASE/munge/munge.socket
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool/slurmd-%n
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd-%n.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU Sockets=1 CoresPerSocket=$NCPU ThreadsPerCore=1 RealMemory=$MEM Gres=gpu:$NGPU State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
cat > "$BASE/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$HOST Name=gpu File=$BASE/dev/nvidia[0-$((NGPU-1))]
EOF
export SLURM_CONF="$BASE/etc/slurm.conf"

# ---------------------------------------------------------------- start
/usr/sbin/munged --key-file="$BASE/munge/munge.key" --socket="$BASE/munge/munge.socket" \
  --pid-file="$BASE/munge/munged.pid" --log-file="$BASE/log/munged.log" \
  --seed-file="$BASE/munge/munged.seed"
slurmctld -f "$SLURM_CONF"       # daemonises; add -D to stay in foreground
slurmd -f "$SLURM_CONF"
ok=
for _ in $(seq 1 100); do   # at most ~30 s: a controller that died (bad config) must not leave sinfo hanging
  kill -0 "$(cat "$BASE/run/slurmctld.pid" 2>/dev/null || echo 0)" 2>/dev/null || { sleep 0.2; kill -0 "$(cat "$BASE/run/slurmctld.pid" 2>/dev/null || echo 0)" 2>/dev/null; } || break
  if timeout 2 sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then ok=1; break; fi
  sleep 0.2
done
T2=$(ts)
if [ -z "$ok" ]; then
  echo "[slurm-up] node never became idle: $(grep -h -m1 fatal "$BASE"/log/slurmctld.log 2>/dev/null || echo "see $BASE/log")" >&2
  kill "$(cat "$BASE/run/slurmd-$HOST.pid" 2>/dev/null)" "$(cat "$BASE/run/slurmctld.pid" 2>/dev/null)" 2>/dev/null
  /usr/sbin/munged -S "$BASE/munge/munge.socket" --stop 2>/dev/null; exit 1
fi

cat > "$BASE/stop.sh" <<EOF
#!/usr/bin/env bash
export SLURM_CONF=$SLURM_CONF
scancel --user=\$(id -un) 2>/dev/null; sleep 1
kill \$(cat $BASE/run/slurmd-$HOST.pid) \$(cat $BASE/run/slurmctld.pid) 2>/dev/null
/usr/sbin/munged -S $BASE/munge/munge.socket --stop 2>/dev/null
# optional: rm -rf $BASE
EOF
chmod +x "$BASE/stop.sh"

sinfo
python3 - "$T0" "$T1" "$T2" <<'EOF'
import sys; t0, t1, t2 = map(float, sys.argv[1:])
print(f"[slurm-up] install {t1-t0:.1f}s, start {t2-t1:.1f}s")
EOF
echo "[slurm-up] PIDs: munged=$(cat $BASE/munge/munged.pid) slurmctld=$(cat $BASE/run/slurmctld.pid) slurmd=$(cat $BASE/run/slurmd-$HOST.pid)"
echo "[slurm-up] use:  export SLURM_CONF=$SLURM_CONF"
echo "[slurm-up] stop: $BASE/stop.sh"
