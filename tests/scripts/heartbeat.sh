#!/usr/bin/env bash
# Every INTERVAL seconds (default 120), one line on what the machine is doing: the load, where the
# CPU time went since the last line (user+system, I/O wait, stolen by the hypervisor) and the memory
# available. `make test-faults` runs it beside the suite, so a slow run's log says why it was slow.
#
# Usage: tests/scripts/heartbeat.sh [INTERVAL] &   (it ends with its parent, or when killed)
set -euo pipefail

interval="${1:-120}"
parent="$PPID"
start=$(date +%s)

cpu() {
    # user nice system idle iowait irq softirq steal (jiffies), from the first line of /proc/stat
    read -r _ user nice system idle iowait irq softirq steal _ < /proc/stat
    echo "$((user + nice + system + irq + softirq)) $idle $iowait $steal"
}

read -r busy0 idle0 wait0 steal0 <<< "$(cpu)"
# sleep's output goes nowhere: killed, this script leaves no process holding the log's pipe open.
while sleep "$interval" >/dev/null 2>&1; do
    kill -0 "$parent" 2>/dev/null || exit 0
    read -r busy idle wait steal <<< "$(cpu)"
    total=$(( (busy - busy0) + (idle - idle0) + (wait - wait0) + (steal - steal0) ))
    (( total > 0 )) || total=1
    read -r load1 _ < /proc/loadavg
    available=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
    # A line of its own, even when pytest -v left a case's name waiting for its result.
    printf '\nheartbeat: %ds in, load %s, cpu busy %d%% iowait %d%% steal %d%%, %d MiB available\n' \
        "$(( $(date +%s) - start ))" "$load1" "$(( 100 * (busy - busy0) / total ))" \
        "$(( 100 * (wait - wait0) / total ))" "$(( 100 * (steal - steal0) / total ))" "$available"
    busy0=$busy idle0=$idle wait0=$wait steal0=$steal
done
