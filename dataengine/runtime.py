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
from typing import Any

import ray
import ray.data
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from dataengine import storage

log = logging.getLogger("dataengine")
OBJECT_STORE_HELP = "cap Ray's object store at this many MB (default: 30%% of memory); beyond it objects spill to disk"


def start_ray(workers: int | None = None, address: str | None = None, object_store_mb: int | None = None) -> int:
    """Start (or join) Ray and return the number of CPUs the pipeline may use.

    ``object_store_mb`` caps the object store of a Ray started here (beyond it, Ray spills objects to local disk);
    Ray's default is 30% of the machine's memory.  A cluster joined by ``address`` keeps its own setting.
    """
    if object_store_mb is not None and address:
        raise ValueError("--object-store-mb sets a Ray started here; a cluster's nodes set theirs at `ray start`")
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
        store = {"object_store_memory": object_store_mb * 2**20} if object_store_mb else {}
        ray.init(num_cpus=workers or os.cpu_count() or 1, **store, **kwargs)
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
def ray_session(
    workers: int | None = None, address: str | None = None, object_store_mb: int | None = None
) -> Iterator[int]:
    """Start Ray for the duration of a command and shut it down after, unless it was already running."""
    was_running = ray.is_initialized()
    cpus = start_ray(workers, address, object_store_mb)
    try:
        yield cpus
    finally:
        if not was_running:
            ray.shutdown()


def check_writable_by_cluster(target: storage.Target, option: str) -> None:
    """Refuse at start a local output the build could not write where the driver reads it back.

    A local path on a multi-node cluster is written by tasks pinned to the driver's node (``writer_options``),
    which needs that node to be a Ray node with a CPU; through a Ray client (``ray://``) the driver is not one.
    """
    if storage.is_uri(target) or len(_alive_nodes()) <= 1 and not ray.util.client.ray.is_connected():
        return
    hint = f"give {option} an s3:// or gs:// URI, which every node writes to"
    if ray.util.client.ray.is_connected():
        raise ValueError(f"{option} {target}: a local path cannot be written through a Ray client (ray://); {hint}")
    here = ray.get_runtime_context().get_node_id()
    cpus = next(n["Resources"].get("CPU", 0) for n in _alive_nodes() if n["NodeID"] == here)
    if cpus < 1:  # the writer tasks (dataengine.shuffle) take one CPU each
        raise ValueError(f"{option} {target}: the driver's Ray node needs a CPU to write a local path; {hint}")


def writer_options(target: storage.Target) -> dict[str, Any]:
    """Ray options for a task that writes under ``target``.

    An object-store URI is written from any node.  A local path on a multi-node cluster is written by tasks on
    the driver's node: the only disk the driver is sure to read back (a worker's own disk is not shared), so
    the bytes travel there through Ray's object store and never through the driver process.
    """
    if storage.is_uri(target) or len(_alive_nodes()) <= 1:
        return {}
    here = ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False)}


def paths_missing_on_nodes(paths: list[str]) -> dict[str, list[str]]:
    """``{node: the paths it cannot see}`` over a multi-node cluster's nodes (one zero-CPU task pinned to each);
    empty on a single node, where the driver's paths are the workers' paths."""
    nodes = _alive_nodes()
    if len(nodes) <= 1 or not paths:
        return {}
    check = ray.remote(num_cpus=0)(_missing_paths)
    refs = {
        f"{node['NodeManagerAddress']} ({node['NodeID'][:8]})": check.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(paths)
        for node in nodes
    }
    found = {node: ray.get(ref) for node, ref in refs.items()}
    return {node: missing for node, missing in found.items() if missing}


def _missing_paths(paths: list[str]) -> list[str]:
    return [path for path in paths if not os.path.exists(path)]


def _alive_nodes() -> list[dict[str, Any]]:
    return [node for node in ray.nodes() if node.get("Alive")]


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
