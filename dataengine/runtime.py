"""Ray start-up and the few Ray Data settings every pipeline shares.

Local Ray by default (the machine's CPUs, or ``--workers N``); ``--ray-address`` joins a running
cluster.  Ray's own INFO chatter is silenced so the console shows progress bars and our summary.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import ray
import ray.data

log = logging.getLogger("dataengine")


def start_ray(workers: int | None = None, address: str | None = None) -> int:
    """Start (or join) Ray and return the number of CPUs the pipeline may use."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if ray.is_initialized():
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return min(cpus, workers) if workers else cpus
    kwargs = dict(
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=True,
        configure_logging=True,
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    configure_data_context(show_progress=True)
    return min(cpus, workers) if workers else cpus


def configure_data_context(show_progress: bool) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = show_progress
    ctx.print_on_execution_start = False
    ctx.verbose_progress = False
    # Our stages never rely on arrival order (we sort by stable keys), but a stable execution order
    # keeps progress output and rejects samples easy to compare between runs.
    ctx.execution_options.preserve_order = True
    # A small input (one block) cannot keep a pool of actors busy; Ray Data says so on every such stage, and
    # there is nothing for the user to do about it.
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray").setLevel(logging.WARNING)
    for handler in logging.getLogger("ray.data").handlers:
        if getattr(handler, "stream", None) in (sys.stderr, sys.stdout) and not any(
            isinstance(f, NoConsoleErrors) for f in handler.filters
        ):
            handler.addFilter(NoConsoleErrors())


class NoConsoleErrors(logging.Filter):
    """Keeps Ray Data's ERROR records (a failed task's traceback, printed before the error reaches the driver) off
    the console: the driver then reports the error in one line, or re-raises it with its traceback, and Ray's
    session log (``/tmp/ray/session_latest/logs/ray-data*.log``) still holds the full record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


@contextmanager
def ray_session(workers: int | None = None, address: str | None = None) -> Iterator[int]:
    """Start Ray for the duration of a command and shut it down after, unless it was already running."""
    was_running = ray.is_initialized()
    cpus = start_ray(workers, address)
    try:
        yield cpus
    finally:
        if not was_running:
            ray.shutdown()


def os_error(error: BaseException | None) -> OSError | None:
    """The operating-system error (disk full, read-only, not a directory) behind an error, also one raised in a
    Ray worker: those reach the driver wrapped, with the original as ``cause`` or ``__cause__``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno is not None:
            return error
        seen.add(id(error))
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None
