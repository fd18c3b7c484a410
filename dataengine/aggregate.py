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
