"""CPU accounting per process group (psutil), so each measurement also says how much CPU each piece spent per
request and how busy the rest of the machine was. Unlike latencies, CPU time per request barely moves when other
work shares the cores, so it explains "what dominates" even on a noisy machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _tree_cpu(root: psutil.Process | None) -> float:
    if root is None:
        return 0.0
    total = 0.0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def machine_busy_seconds() -> float:
    """All CPUs' non-idle time since boot (from /proc/stat), in seconds."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user/nice
    return (sum(values) - idle - guest) / CLK_TCK


@dataclass
class CpuMeter:
    """Groups: name -> root process (its whole tree is counted). `client` is this process (incl. its waited
    children such as wrk runs); `postgres` is the embedded server's postmaster tree when we run it."""

    groups: dict[str, psutil.Process] = field(default_factory=dict)

    def add(self, name: str, pid: int | None) -> None:
        if pid is None:
            return
        try:
            self.groups[name] = psutil.Process(pid)
        except psutil.Error:
            pass

    def snapshot(self) -> dict[str, float]:
        me = psutil.Process()
        times = me.cpu_times()
        snap = {name: _tree_cpu(process) for name, process in self.groups.items()}
        snap["client"] = times.user + times.system + times.children_user + times.children_system
        snap["machine"] = machine_busy_seconds()
        return snap

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: after[name] - before.get(name, 0.0) for name in after}


def per_request(delta: dict[str, float], requests: int, wall_seconds: float, cores: int | None = None) -> dict:
    """CPU ms per request per group, and how much of the machine the rest used meanwhile."""
    cores = cores or os.cpu_count() or 1
    ours = sum(value for name, value in delta.items() if name != "machine")
    other = max(0.0, delta.get("machine", 0.0) - ours)
    # max(0): a group's total can shrink when one of its processes exits (a postgres backend) between snapshots.
    out = {f"{name}_cpu_ms_per_request": round(max(0.0, value) / requests * 1000, 3) if requests else None
           for name, value in delta.items() if name != "machine"}
    if wall_seconds > 0:
        out["machine_busy_percent"] = round(100 * delta.get("machine", 0.0) / (wall_seconds * cores), 1)
        out["other_processes_busy_percent"] = round(100 * other / (wall_seconds * cores), 1)
    return out


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


class QuietWaiter:
    """Waits (within a total budget) until the machine is mostly idle before a measurement starts: on a shared
    machine, other work on the 2 cores turns sub-millisecond hops into multi-millisecond ones."""

    def __init__(self, budget_seconds: float, threshold_percent: float = 20.0, window: float = 1.0):
        self.budget = budget_seconds
        self.threshold = threshold_percent
        self.window = window
        self.waited = 0.0

    def wait(self, log=None) -> dict:
        import time

        cores = os.cpu_count() or 1
        quiet_windows = 0
        last = 100.0
        began = time.monotonic()
        while self.budget > 0:
            before = machine_busy_seconds()
            time.sleep(self.window)
            last = 100 * (machine_busy_seconds() - before) / (self.window * cores)
            quiet_windows = quiet_windows + 1 if last < self.threshold else 0
            if quiet_windows >= 2 or self.waited + time.monotonic() - began >= self.budget:
                break
        spent = time.monotonic() - began
        self.waited += spent
        quiet = quiet_windows >= 2
        if log and self.budget > 0 and not quiet:
            log(f"machine still busy ({last:.0f}% of all cores) after the quiet-wait budget: measuring anyway")
        return {"quiet": quiet, "busy_percent_before": round(last, 1), "waited_seconds": round(spent, 1)}
