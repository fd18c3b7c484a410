"""Peak memory and CPU time of a whole process tree (the build's driver plus Ray's raylet, GCS and workers).

Proportional set size (PSS, from /proc/PID/smaps_rollup) is summed over the tree, so pages shared between
processes — Ray's object store in /dev/shm, shared libraries — are counted once, not once per worker.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def tree_pids(root: int) -> list[int]:
    """``root`` and every process below it, as /proc shows them now."""
    tree, pids, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    return pids


def tree_pss_bytes(root: int) -> int:
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class PeakMemory:
    """Samples the tree below ``pid`` (default: this process) every ``interval`` seconds until stopped."""

    def __init__(self, pid: int | None = None, interval: float = 0.5) -> None:
        self.pid, self.interval, self.peak = pid or os.getpid(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_pss_bytes(self.pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class TreeCpu:
    """CPU seconds of this process and every descendant (Ray's processes, datatrove's pool) while in the block:
    on a shared machine, less sensitive than wall time to what else runs.  Each process's utime + stime is
    sampled every ``interval``; one that exits keeps its last sample (up to ``interval`` of it is missed)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.seen, self.base, self.seconds = interval, {}, {}, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in tree_pids(os.getpid()):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[pid] = max(self.seen.get(pid, 0), int(fields[11]) + int(fields[12]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeCpu:
        self._sample()
        self.base = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        ticks = sum(t - self.base.get(pid, 0) for pid, t in self.seen.items())
        self.seconds = ticks / os.sysconf("SC_CLK_TCK")
