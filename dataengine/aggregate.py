"""Grouped sums over a Ray Dataset, reduced by a tree of Ray tasks.

Every global statistic of a build (source totals, the mix's cut histograms, the funnel) is a small table of sums
per key.  Ray Data's ``groupby().sum()`` shuffles through aggregator actors, which costs seconds of start-up per
call on a small cluster; here each block is summed where it lies, and the partial tables are merged
``FAN_IN`` at a time by remote tasks, so the driver only ever holds object references (one per block) and the
final table (one row per key).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import ray
import ray.data

FAN_IN = 16


def _sum_table(table: pa.Table, keys: list[str], values: list[str]) -> pa.Table:
    if table.num_rows == 0:
        return table.select([*keys, *values])
    agg = table.group_by(keys, use_threads=False).aggregate([(v, "sum") for v in values])
    agg = agg.rename_columns([n.removesuffix("_sum") for n in agg.column_names])
    return agg.select([*keys, *values]).sort_by([(k, "ascending") for k in keys])


@ray.remote(num_cpus=0.25)
def _merge(keys: list[str], values: list[str], *tables: pa.Table) -> pa.Table:
    return _sum_table(pa.concat_tables(tables, promote_options="permissive"), keys, values)


def grouped_sums(
    ds: ray.data.Dataset,
    rows: Callable[..., pa.Table],
    keys: list[str],
    values: list[str],
    fn_kwargs: dict[str, Any] | None = None,
) -> pa.Table:
    """Sums of ``values`` per ``keys`` over the tables ``rows(batch, **fn_kwargs)`` returns for each batch."""

    def partial(batch: pa.Table) -> pa.Table:
        return _sum_table(rows(batch, **(fn_kwargs or {})), keys, values)

    refs = ds.map_batches(partial, batch_format="pyarrow", batch_size=None).to_arrow_refs()
    if not refs:  # a dataset of no blocks: no key has a sum
        return pa.table(
            {**{k: pa.array([], pa.string()) for k in keys}, **{v: pa.array([], pa.int64()) for v in values}}
        )
    while len(refs) > 1:
        refs = [_merge.remote(keys, values, *refs[i : i + FAN_IN]) for i in range(0, len(refs), FAN_IN)]
    return ray.get(refs[0])


def _smallest_table(table: pa.Table, keys: list[str], order: str, k: int) -> pa.Table:
    if table.num_rows == 0:
        return table
    table = table.sort_by([*((key, "ascending") for key in keys), (order, "ascending")])
    columns = [table[key].to_pylist() for key in keys]
    starts, taken, prev = [], 0, None
    for i, group in enumerate(zip(*columns, strict=True)):
        taken = taken + 1 if group == prev else 1
        prev = group
        if taken <= k:
            starts.append(i)
    return table.take(pa.array(starts, pa.int64()))


@ray.remote(num_cpus=0.25)
def _merge_smallest(keys: list[str], order: str, k: int, *tables: pa.Table) -> pa.Table:
    return _smallest_table(pa.concat_tables(tables, promote_options="permissive"), keys, order, k)


def grouped_smallest(
    ds: ray.data.Dataset, rows: Callable[..., pa.Table], keys: list[str], order: str, k: int
) -> pa.Table:
    """The ``k`` rows with the smallest ``order`` per ``keys`` among the tables ``rows(batch)`` returns: a
    hash-chosen sample of bounded size, reduced like ``grouped_sums``."""
    refs = ds.map_batches(
        lambda batch: _smallest_table(rows(batch), keys, order, k), batch_format="pyarrow", batch_size=None
    ).to_arrow_refs()
    while len(refs) > 1:
        refs = [_merge_smallest.remote(keys, order, k, *refs[i : i + FAN_IN]) for i in range(0, len(refs), FAN_IN)]
    return ray.get(refs[0]) if refs else pa.table({})
