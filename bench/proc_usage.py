"""Memory and CPU of processes by PID, read from /proc: what a process costs while it only waits."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)


def rss_mib(pid: int) -> float | None:
    """Resident memory (VmRSS) of a process in MiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Usage:
    """One process over one interval: CPU as a share of one core, and its resident memory."""

    cpu_percent: float
    rss_mean_mib: float
    rss_max_mib: float


def measure(pids: dict[str, int], seconds: float, extra_cpu: dict[str, list[int]] | None = None) -> dict[str, Usage]:
    """CPU% and RSS of each named process over `seconds`, sampled every second.

    `extra_cpu` names groups of processes (e.g. the database's backends) whose CPU is summed over
    those alive at both ends; their memory is not counted (PostgreSQL's shared buffers would be).
    """
    groups = {name: [pid] for name, pid in pids.items()} | (extra_cpu or {})
    started = time.monotonic()
    cpu0 = {pid: cpu_seconds(pid) for group in groups.values() for pid in group}
    rss: dict[str, list[float]] = {name: [] for name in pids}
    while (elapsed := time.monotonic() - started) < seconds:
        for name, pid in pids.items():
            value = rss_mib(pid)
            if value is not None:
                rss[name].append(value)
        time.sleep(min(1.0, max(seconds - elapsed, 0.0)))
    wall = time.monotonic() - started
    cpu1 = {pid: cpu_seconds(pid) for group in groups.values() for pid in group}
    result = {}
    for name, group in groups.items():
        used = 0.0
        for pid in group:
            before, after = cpu0[pid], cpu1[pid]
            if before is not None and after is not None:
                used += after - before
        sizes = rss.get(name) or [float("nan")]
        result[name] = Usage(
            cpu_percent=100 * used / wall, rss_mean_mib=sum(sizes) / len(sizes), rss_max_mib=max(sizes)
        )
    return result
