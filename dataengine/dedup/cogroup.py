"""Distributed joins for dedup: hash partitions of a key, and a co-group of two datasets on one key.

Ray Data's ``Dataset.join`` needs ``polars``, which this project does not install; a co-group is the same
shuffle written with what it has: both sides are brought to one schema (each side's columns, prefixed, with
the other side's as nulls), tagged with their side and the partition of their key, unioned and grouped by
partition, and one function sees each partition's left and right rows together.  Every row of a key lands in
the same partition, so a function that joins within a partition joins the whole datasets; no node holds more
than one partition.  The partition of a key is a hash of it (never of the worker count), and functions sort
what they return by stable keys, so the result is the same whatever the number of workers or blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.dedup.minhash import U64, fmix64, hash_strings
from dataengine.shuffle import partition_map

PART = "__part"
SIDE = "__side"
ROWS_PER_PARTITION = 500_000  # rows grouped in one task's memory


def partitions(rows: int, per_partition: int = ROWS_PER_PARTITION) -> int:
    """How many partitions keep each near ``per_partition`` rows (a function of the data, not of the cluster)."""
    return max(1, rows // per_partition + 1)


def key_partition(keys: pa.Array | pa.ChunkedArray, parts: int) -> np.ndarray:
    """The partition of each key (strings or unsigned integers): a stable 64-bit hash modulo ``parts``."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type):
        hashes = hash_strings(keys)
    else:
        hashes = fmix64(keys.to_numpy(zero_copy_only=False).astype(U64))
    return (hashes % U64(parts)).astype(np.int32)


def _tag(table: pa.Table, on: str, side: int, schemas: tuple[pa.Schema, pa.Schema], parts: int) -> pa.Table:
    """The rows under the shared schema: this side's columns prefixed, the other side's null, side, partition."""
    n = table.num_rows
    columns = {}
    for k, (prefix, schema) in enumerate(zip(("l:", "r:"), schemas, strict=True)):
        for field in schema:
            columns[prefix + field.name] = table[field.name].cast(field.type) if k == side else pa.nulls(n, field.type)
    columns[PART] = pa.array(key_partition(table[on], parts), pa.int32())
    columns[SIDE] = pa.array(np.full(n, side, np.int8), pa.int8())
    return pa.table(columns)


def _side(group: pa.Table, side: int, prefix: str) -> pa.Table | None:
    """One side's rows of a partition under their own names, or None when the partition has none."""
    rows = group.filter(pc.equal(group[SIDE], side))
    if rows.num_rows == 0:
        return None
    names = [n for n in group.column_names if n.startswith(prefix)]
    return rows.select(names).rename_columns([n[len(prefix) :] for n in names])


def _apply(group: pa.Table, fn: Callable[..., pa.Table], fn_kwargs: dict[str, Any]) -> pa.Table:
    return fn(_side(group, 0, "l:"), _side(group, 1, "r:"), **fn_kwargs)


def cogroup(
    left: ray.data.Dataset,
    right: ray.data.Dataset,
    on: tuple[str, str],
    schemas: tuple[pa.Schema, pa.Schema],
    parts: int,
    fn: Callable[..., pa.Table],
    fn_kwargs: dict[str, Any] | None = None,
) -> ray.data.Dataset:
    """``fn(left_rows, right_rows, **fn_kwargs)`` per hash partition of the keys ``on = (left key, right key)``.

    ``schemas`` are the two sides' (the driver passes them: asking a lazy dataset would run it).  A side with no
    rows in a partition is passed as None; ``fn`` returns the partition's result rows (one schema for every
    partition).  Partitions where neither side has rows are never called.
    """
    tagged_left = left.map_batches(
        _tag, fn_kwargs={"on": on[0], "side": 0, "schemas": schemas, "parts": parts}, batch_format="pyarrow"
    )
    tagged_right = right.map_batches(
        _tag, fn_kwargs={"on": on[1], "side": 1, "schemas": schemas, "parts": parts}, batch_format="pyarrow"
    )
    return partition_map(tagged_left.union(tagged_right), PART, parts, _apply, {"fn": fn, "fn_kwargs": fn_kwargs or {}})


def arrow_schema(ds: ray.data.Dataset) -> pa.Schema:
    """The Arrow schema of a materialised dataset (known from its blocks' metadata)."""
    return ds.schema().base_schema
