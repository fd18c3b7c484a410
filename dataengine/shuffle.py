"""Partition a Ray Dataset by an integer column and hand each partition to one task: a map-reduce in Ray tasks.

Each block is split where it lies into ``parts`` tables (one task per block, ``num_returns=parts``); the task of
partition ``p`` receives the ``p``-th table of every block.  The driver holds object references (blocks x parts),
never rows.  Ray Data's ``groupby().map_groups()`` does the same through aggregator actors, whose start-up costs
seconds per call on a small cluster; the shard writers run once per build and need nothing more than this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data


@ray.remote(num_cpus=0.5)
def _split(table: pa.Table, key: str, parts: int) -> tuple[pa.Table, ...] | pa.Table:
    keys = table[key].to_numpy(zero_copy_only=False) if table.num_rows else np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(parts + 1))
    out = tuple(table.take(pa.array(order[bounds[p] : bounds[p + 1]])) for p in range(parts))
    return out if parts > 1 else out[0]


@ray.remote(num_cpus=0.5)
def _apply(fn: Callable[..., Any], kwargs: dict[str, Any], *tables: pa.Table) -> Any:
    table = pa.concat_tables([t for t in tables if t.num_rows] or tables[:1])
    return fn(table, **kwargs) if table.num_rows else None


def partition_apply(
    ds: ray.data.Dataset, key: str, parts: int, fn: Callable[..., Any], fn_kwargs: dict[str, Any] | None = None
) -> list[Any]:
    """``fn(rows of partition p, **fn_kwargs)`` for every non-empty partition ``p`` in ``range(parts)`` of the
    integer column ``key``; the results in partition order."""
    refs = ds.to_arrow_refs()
    if not refs:
        return []
    splits = [_split.options(num_returns=parts).remote(ref, key, parts) for ref in refs]
    if parts == 1:
        splits = [[s] for s in splits]
    results = ray.get([_apply.remote(fn, fn_kwargs or {}, *(s[p] for s in splits)) for p in range(parts)])
    return [r for r in results if r is not None]
