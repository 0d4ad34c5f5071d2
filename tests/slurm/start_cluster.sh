#!/usr/bin/env bash
# Start a one-node SLURM 22.05 cluster on localhost (Debian 12 packages), for the tests and for trying
# profiles/slurm by hand, with job accounting (MariaDB + slurmdbd) so that `sacct` works as on production
# clusters. Idempotent: a second call with the cluster up only waits for the node to be idle.
#
#   sudo tests/slurm/start_cluster.sh          # start (installs munge, slurm*, mariadb-server if missing)
#   sbatch --gpus=1 --wrap 'echo $CUDA_VISIBLE_DEVICES'
#   sudo tests/slurm/stop_cluster.sh           # stop by PID
#   sudo tests/slurm/start_cluster.sh --keep-jobs  # restart stopped daemons, keeping the controller's jobs
#
# The node advertises WEIGHTZOO_SLURM_GPUS count-only GPUs backed by inert character devices, so jobs that
# ask for `--gpus=1` are scheduled and run on the CPU (SLURM 22.05 ignores GPUs without a device file and
# rejects plain files). Needs root: the daemons run as root and the config must be at
# /etc/slurm/slurm.conf, because the executor's in-job `srun` does not see SLURM_CONF.
#
# Environment:
#   WEIGHTZOO_SLURM_STATE  state folder: config, PIDs, logs, spool  [/tmp/weightzoo-slurm]
#   WEIGHTZOO_SLURM_GPUS   fake GPUs on the node                    [2]
#   WEIGHTZOO_SLURM_CPUS   CPUs the node advertises (may exceed the real ones) [max(nproc, 8)]
#   WEIGHTZOO_SLURM_MEM_MB memory the node advertises, MB (not enforced: no cgroups) [262144]
#   WEIGHTZOO_SLURM_PARTITION  partition name                       [debug]
#   WEIGHTZOO_SLURM_MAXTIME    the partition's MaxTime, minutes     [60]
#   WEIGHTZOO_SLURM_TEST_ACCOUNT  account for root besides its default [weightzoo]
set -euo pipefail

STATE="${WEIGHTZOO_SLURM_STATE:-/tmp/weightzoo-slurm}"
GPUS="${WEIGHTZOO_SLURM_GPUS:-2}"
MEM_MB="${WEIGHTZOO_SLURM_MEM_MB:-262144}"
CPUS="${WEIGHTZOO_SLURM_CPUS:-$(($(nproc) > 8 ? $(nproc) : 8))}"
PARTITION="${WEIGHTZOO_SLURM_PARTITION:-debug}"
MAXTIME="${WEIGHTZOO_SLURM_MAXTIME:-60}"
ACCOUNT="${WEIGHTZOO_SLURM_TEST_ACCOUNT:-weightzoo}"
DB_PORT=3306
KEEP_JOBS=0
[[ "${1:-}" == --keep-jobs ]] && KEEP_JOBS=1
NODE="$(hostname -s)"

log() { echo "start_cluster: $*" >&2; }

if [[ "$(id -u)" != 0 ]]; then
    log "must run as root (SLURM daemons and /etc/slurm/slurm.conf)"
    exit 2
fi

# A recorded PID counts only while it is still that daemon (a PID from an earlier boot may be reused) and
# not a zombie (a container's PID 1 may never reap a killed daemon).
alive() {
    local pid
    pid="$(cat "$STATE/$1.pid" 2>/dev/null)" || return 1
    [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$1" ]] || return 1
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

install_packages() {
    local missing=()
    for cmd in munged slurmctld slurmd sbatch slurmdbd mariadbd; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
    ((${#missing[@]} == 0)) && return 0
    log "installing munge slurmctld slurmd slurm-client slurmdbd mariadb-server (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # Exit 3 tells tests/test_slurm.py that this machine cannot get SLURM (it skips instead of failing).
    apt-get update -qq || { log "apt-get update failed"; exit 3; }
    apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null ||
        { log "apt-get install failed"; exit 3; }
}

write_config() {
    mkdir -p "$STATE"/{ctld,spool,dev,log}
    local i files
    for ((i = 0; i < GPUS; i++)); do
        # Major 195 is the NVIDIA driver's; nothing here opens these nodes, SLURM only needs them to exist.
        [[ -c "$STATE/dev/fakegpu$i" ]] || mknod "$STATE/dev/fakegpu$i" c 195 "$i"
    done
    files="$STATE/dev/fakegpu[0-$((GPUS - 1))]"
    ((GPUS == 1)) && files="$STATE/dev/fakegpu0"
    cat >"$STATE/slurm.conf" <<EOF
# Written by tests/slurm/start_cluster.sh: one-node test cluster, daemons as root, accounting in slurmdbd.
ClusterName=weightzoo
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.daemon.pid
SlurmdPidFile=$STATE/slurmd.daemon.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
# The node advertises what this file says, not what slurmd detects: two GPU jobs asking for
# cpus-per-gpu=2 plus a CPU job fit on a 2-core test machine (they mostly wait on each other), and
# a retry's doubled mem_mb still fits (memory is not enforced: proctrack/linuxproc, no cgroups).
SlurmdParameters=config_overrides
# Finished jobs stay visible to squeue for 10 min (the tests read states with squeue; Snakemake uses sacct).
MinJobAge=600
SchedulerParameters=sched_interval=2
KillWait=5
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
# A time limit as on real partitions: a job asking more pends forever (PartitionTimeLimit), since
# EnforcePartLimits is NO (the default); the workflow must never ask more, retries included.
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=$MAXTIME State=UP
EOF
    cat >"$STATE/slurmdbd.conf" <<EOF
# Written by tests/slurm/start_cluster.sh: accounting in the MariaDB started beside it.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.daemon.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=weightzoo
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/slurmdbd.conf"
    cat >"$STATE/gres.conf" <<EOF
NodeName=$NODE Name=gpu File=$files
EOF
    mkdir -p /etc/slurm
    local f
    for f in slurm.conf gres.conf slurmdbd.conf; do
        if [[ -e /etc/slurm/$f && ! -L /etc/slurm/$f ]]; then
            log "/etc/slurm/$f exists and is not our symlink; moving it to /etc/slurm/$f.orig"
            mv "/etc/slurm/$f" "/etc/slurm/$f.orig"
        fi
        ln -sfn "$STATE/$f" "/etc/slurm/$f"
    done
}

start_daemons() {
    if ! alive munged; then
        [[ -s /etc/munge/munge.key ]] || { mungekey --create --force 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; }
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge
        # setpriv execs, so $! is munged itself and stop_cluster.sh can end it by PID.
        setsid setpriv --reuid=munge --regid=munge --clear-groups \
            munged --foreground --log-file="$STATE/log/munged.log" >>"$STATE/log/munged.out" 2>&1 </dev/null &
        echo $! >"$STATE/munged.pid"
        for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    start_accounting
    if ! alive slurmctld; then
        # -c: forget jobs of an earlier run (not with --keep-jobs: a controller restart mid-run); -i: ignore
        # unreadable state
        setsid slurmctld -D $( ((KEEP_JOBS)) || echo -c) -i -f "$STATE/slurm.conf" >>"$STATE/log/slurmctld.out" 2>&1 </dev/null &
        echo $! >"$STATE/slurmctld.pid"
    fi
    if ! alive slurmd; then
        setsid slurmd -D -f "$STATE/slurm.conf" -N "$NODE" >>"$STATE/log/slurmd.out" 2>&1 </dev/null &
        echo $! >"$STATE/slurmd.pid"
    fi
}

# MariaDB (own data folder under $STATE, TCP on 127.0.0.1) and slurmdbd, then the cluster, an account and
# root's association, so `sacct` answers and `-A $ACCOUNT` is accepted.
start_accounting() {
    local _
    if ! alive mariadbd; then
        # MariaDB runs as mysql: its data, socket, PID and log live in folders that user owns.
        mkdir -p "$STATE/mysql" "$STATE/mysql-run"
        chown mysql:mysql "$STATE/mysql" "$STATE/mysql-run"
        if [[ ! -d "$STATE/mysql/mysql" ]]; then
            mariadb-install-db --user=mysql --datadir="$STATE/mysql" --skip-test-db \
                --auth-root-authentication-method=socket >>"$STATE/log/mariadb.out" 2>&1
        fi
        setsid mariadbd --user=mysql --datadir="$STATE/mysql" --socket="$STATE/mysql-run/mysqld.sock" \
            --bind-address=127.0.0.1 --port=$DB_PORT --pid-file="$STATE/mysql-run/mariadbd.pid" \
            --log-error="$STATE/mysql-run/mariadb.log" --skip-name-resolve >>"$STATE/log/mariadb.out" 2>&1 </dev/null &
        echo $! >"$STATE/mariadbd.pid"
        for _ in $(seq 100); do mariadb --socket="$STATE/mysql-run/mysqld.sock" -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
        mariadb --socket="$STATE/mysql-run/mysqld.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'weightzoo';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;" ||
            { log "MariaDB did not start; see $STATE/mysql-run/mariadb.log"; return 1; }
    fi
    if ! alive slurmdbd; then
        setsid slurmdbd -D >>"$STATE/log/slurmdbd.out" 2>&1 </dev/null &
        echo $! >"$STATE/slurmdbd.pid"
        for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx weightzoo ||
        sacctmgr -i add cluster weightzoo >/dev/null
    sacctmgr -n -P list account format=account 2>/dev/null | grep -qx "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" Cluster=weightzoo Description=tests Organization=weightzoo >/dev/null
    sacctmgr -n -P list assoc user=root account="$ACCOUNT" format=account 2>/dev/null | grep -qx "$ACCOUNT" ||
        sacctmgr -i add user root Account="$ACCOUNT" Cluster=weightzoo >/dev/null
}

wait_idle() {
    local state=""
    for _ in $(seq 120); do
        state="$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1 || true)"
        case "$state" in
        idle | mixed | allocated) log "node $NODE is $state (partition $PARTITION, $GPUS fake GPUs, state in $STATE)"; return 0 ;;
        down* | drain* | drained*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    log "node $NODE not idle after 60 s (state: ${state:-no answer}); logs in $STATE/log"
    tail -n 20 "$STATE"/log/*.log >&2 || true
    return 1
}

install_packages
if ! ((KEEP_JOBS)) && { ! alive slurmctld || ! alive slurmd || ! alive slurmdbd; }; then write_config; fi
start_daemons
wait_idle
