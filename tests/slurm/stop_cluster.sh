#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start_cluster.sh: cancels its jobs, then ends the daemons by
# the PIDs recorded in the state folder (never by name). Idempotent. Pass --purge to also remove the state
# folder and the /etc/slurm symlinks.
set -uo pipefail

STATE="${WEIGHTZOO_SLURM_STATE:-/tmp/weightzoo-slurm}"

stop_pid() {
    local name="$1" pidfile="$STATE/$1.pid" pid
    [[ -s "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    # Only while the PID is still that daemon: a PID from an earlier boot may belong to anything now.
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
            [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" =~ ^(Z|)$ ]] && break  # gone or a zombie
            sleep 0.1
        done
        [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" =~ ^(Z|)$ ]] || kill -KILL "$pid" 2>/dev/null
        echo "stop_cluster: stopped $name ($pid)" >&2
    fi
    rm -f "$pidfile"
}

if [[ -s "$STATE/slurmctld.pid" && "$(cat "/proc/$(cat "$STATE/slurmctld.pid")/comm" 2>/dev/null)" == slurmctld ]]; then
    scancel --full --quiet --partition="${WEIGHTZOO_SLURM_PARTITION:-debug}" 2>/dev/null || true
    sleep 1
fi
stop_pid slurmd
stop_pid slurmctld
stop_pid slurmdbd
stop_pid mariadbd
stop_pid munged

if [[ "${1:-}" == --purge ]]; then
    for f in slurm.conf gres.conf slurmdbd.conf; do
        [[ "$(readlink "/etc/slurm/$f" 2>/dev/null)" == "$STATE/$f" ]] && rm -f "/etc/slurm/$f"
    done
    rm -rf "$STATE"
fi
exit 0
