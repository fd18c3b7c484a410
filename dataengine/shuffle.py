"""Partition a Ray Dataset by an integer column and hand each partition to one task: a map-reduce in Ray tasks.

Each block is split where it lies into ``parts`` tables (one task per block, ``num_returns=parts``); the task of
partition ``p`` receives the ``p``-th table of every block.  The input is streamed, never cached as a whole: a
block is released once it is split, and a split once its partition's task has run, so a shuffle holds about one
copy of its data in the object store, not two.  Tasks take one CPU each: half a CPU let twice as many run, each
a Python worker holding its tables (at 1M documents, 10 workers held 2.1 GB of near-dedup's 5.45 GB peak).  The
driver holds object references (blocks x parts) and one flag per partition, never rows.  Ray Data's
``groupby().map_groups()`` does the same through aggregator actors, whose start-up costs seconds per call on a
small cluster (measured here: the shard writers took 46 s through ``map_groups`` and 0.6 s through this on the
test corpus, with other jobs on the machine).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data
from ray.data.block import BlockAccessor


@ray.remote
def _split(block: Any, key: str, parts: int) -> tuple[pa.Table, ...] | pa.Table:
    table = BlockAccessor.for_block(block).to_arrow()
    keys = table[key].to_numpy(zero_copy_only=False) if table.num_rows else np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(parts + 1))
    out = tuple(table.take(pa.array(order[bounds[p] : bounds[p + 1]])) for p in range(parts))
    return out if parts > 1 else out[0]


@ray.remote(num_returns=2)
def _apply(fn: Callable[..., pa.Table], kwargs: dict[str, Any], *tables: pa.Table) -> tuple[pa.Table | None, bool]:
    table = pa.concat_tables([t for t in tables if t.num_rows] or tables[:1])
    if not table.num_rows:
        return None, False
    return fn(table, **kwargs), True


def _partitions(
    ds: ray.data.Dataset, key: str, parts: int, fn: Callable[..., pa.Table], kwargs: dict, options: dict[str, Any]
) -> list:
    splits = [
        _split.options(num_returns=parts).remote(ref, key, parts)
        for bundle in ds.iter_internal_ref_bundles()  # streamed, not cached by ``ds``: a block is freed once split
        for ref in bundle.block_refs
    ]
    if not splits:
        return []
    if parts == 1:
        splits = [[s] for s in splits]
    apply = _apply.options(**options) if options else _apply
    results = [apply.remote(fn, kwargs, *(s[p] for s in splits)) for p in range(parts)]
    del splits  # a split is released once its partition's task has run
    called = ray.get([flag for _, flag in results])  # one flag per partition
    return [table for (table, _), flag in zip(results, called, strict=True) if flag]


def partition_map(
    ds: ray.data.Dataset, key: str, parts: int, fn: Callable[..., pa.Table], fn_kwargs: dict[str, Any] | None = None
) -> ray.data.Dataset:
    """The dataset of ``fn(rows of partition p, **fn_kwargs)`` over the partitions ``p`` in ``range(parts)`` of
    the integer column ``key`` that hold rows, in partition order (the tables stay in the object store)."""
    refs = _partitions(ds, key, parts, fn, fn_kwargs or {}, {})
    return ray.data.from_arrow_refs(refs) if refs else ray.data.from_arrow([])


def partition_apply(
    ds: ray.data.Dataset,
    key: str,
    parts: int,
    fn: Callable[..., pa.Table],
    fn_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> list[pa.Table]:
    """Like ``partition_map``, for small results (the shard writers' metadata): the tables themselves.
    ``options``: Ray options of the partition tasks (``runtime.writer_options`` for tasks that write files)."""
    return ray.get(_partitions(ds, key, parts, fn, fn_kwargs or {}, options or {}))
