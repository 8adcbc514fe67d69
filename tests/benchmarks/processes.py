"""What the benchmarks read about processes from /proc (CPU used, peak memory, the local database
server), and where they let them run."""

import os
import subprocess
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
DATABASE_SERVERS = ("mariadbd", "mysqld")


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (0 for no pid, or once it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid):
    """Peak resident memory (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def database_pids():
    """The pids of MariaDB or MySQL servers running on this machine."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in DATABASE_SERVERS:
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


def children(pid):
    """The child processes of ``pid`` (gunicorn's workers under its master)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def load_average():
    """The machine's load averages over 1, 5 and 15 minutes, as ``uptime`` prints them."""
    return "load average " + ", ".join(Path("/proc/loadavg").read_text().split()[:3])


def pin(pids, cpus):
    """Keep the processes ``pids`` (every thread of each) on the CPUs ``cpus``; return the old ones by pid.

    os.sched_setaffinity covers one thread; ``taskset -a`` covers them all.
    """
    before = {}
    for pid in pids:
        before[pid] = os.sched_getaffinity(pid)
        subprocess.run(
            ["taskset", "-a", "-p", "-c", ",".join(map(str, sorted(cpus))), str(pid)],
            check=True,
            capture_output=True,
        )
    return before


def unpin(before):
    """Give processes back the CPUs :func:`pin` took from them (the ones still running)."""
    for pid, cpus in before.items():
        if Path(f"/proc/{pid}").exists():
            subprocess.run(
                ["taskset", "-a", "-p", "-c", ",".join(map(str, sorted(cpus))), str(pid)],
                check=False,
                capture_output=True,
            )
