"""Distributed weighted cuts: "take documents in hash order until their weight reaches a target", with no node
holding the documents.

The mix's partial pass and the tokenizer's sample both walk a source's documents in the order of a seeded 64-bit
hash and stop at the document whose cumulative weight (tokens, bytes) reaches a target.  Sorting every document
globally would answer that but moves all rows; instead the hash range is narrowed by histograms: each round the
workers sum the weight and count of the documents in ``BUCKETS`` equal slices of the current range per group
(``aggregate.grouped_sums``: the driver receives at most groups x ``BUCKETS`` rows), and the driver keeps the slice
where the running total crosses the target.  When that slice holds one document the cut is exact: every
document hashed below ``lo`` is taken whole, the one in ``[lo, hi)`` is the crossing document, and none above.
With 2^14 buckets a round, a million documents need two or three rounds, a billion four.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.aggregate import grouped_sums

BUCKETS = 1 << 14
HASH_END = 1 << 64  # one past the largest 64-bit hash
MAX_ROUNDS = 8  # 64 bits / 14 bits per round, rounded up: a range of width 1 holds one hash


@dataclass(frozen=True)
class Cut:
    """Documents with hash < ``lo`` come before the crossing one (their weight is ``before``); the crossing
    document is the only one in ``[lo, hi)``; ``lo == hi`` means there is none (a target of 0, or beyond the
    group's total, in which case ``lo == HASH_END`` and every document is before)."""

    lo: int
    hi: int
    before: int

    def below(self, h: int) -> bool:
        """Whether a document hashed ``h`` comes before the crossing one."""
        return h < self.lo

    def crossing(self, h: int) -> bool:
        """Whether a document hashed ``h`` is the crossing one."""
        return self.lo <= h < self.hi


def _less(hashes: np.ndarray, bound: int) -> np.ndarray:
    if bound >= HASH_END:
        return np.ones(len(hashes), dtype=bool)
    return hashes < np.uint64(bound)


def _histogram(table: pa.Table, ranges: dict[str, tuple[int, int]]) -> pa.Table:
    """Ray Data ``map_batches`` function: ``(group, bucket) -> weight, docs`` of the rows inside their group's
    open range."""
    parts = []
    groups = table["group"].to_numpy(zero_copy_only=False)
    hashes = table["hash"].to_numpy(zero_copy_only=False)
    weights = table["weight"].to_numpy(zero_copy_only=False)
    for group, (lo, hi) in ranges.items():
        inside = (groups == group) & ~_less(hashes, lo) & _less(hashes, hi)
        if not inside.any():
            continue
        step = np.uint64(-(-(hi - lo) // BUCKETS))  # ceil: BUCKETS slices cover the range
        buckets = ((hashes[inside] - np.uint64(lo)) // step).astype(np.int64)
        parts.append(pa.table({"group": pa.repeat(group, len(buckets)), "bucket": buckets, "weight": weights[inside]}))
    if not parts:
        return pa.table({"group": pa.array([], pa.string()), "bucket": pa.array([], pa.int64()),
                         "weight": pa.array([], pa.int64()), "docs": pa.array([], pa.int64())})  # fmt: skip
    rows = pa.concat_tables(parts)
    return rows.append_column("docs", pa.repeat(pa.scalar(1, pa.int64()), rows.num_rows))


def find_cuts(rows: ray.data.Dataset, targets: dict[str, int]) -> dict[str, Cut]:
    """The cut of each group of ``rows`` (columns ``group``, ``hash`` uint64, ``weight`` int64) at its target.

    The crossing document is the first, in hash order, whose weight together with all before it reaches the
    target.  ``rows`` should be materialized: it is read once per round.
    """
    totals = _totals(rows)
    cuts: dict[str, Cut] = {}
    open_: dict[str, tuple[int, int, int]] = {}  # group -> (lo, hi, weight before lo)
    for group, target in targets.items():
        if target <= 0:
            cuts[group] = Cut(0, 0, 0)
        elif target > totals.get(group, 0):
            cuts[group] = Cut(HASH_END, HASH_END, totals.get(group, 0))
        else:
            open_[group] = (0, HASH_END, 0)
    for _ in range(MAX_ROUNDS):
        if not open_:
            return cuts
        ranges = {g: (lo, hi) for g, (lo, hi, _) in open_.items()}
        table = grouped_sums(rows, _histogram, ["group", "bucket"], ["weight", "docs"], {"ranges": ranges})
        for group in list(open_):
            lo, hi, before = open_[group]
            mine = table.filter(pc.equal(table["group"], group)).sort_by("bucket")
            buckets = mine["bucket"].to_numpy()
            weight = mine["weight"].to_numpy()
            docs = mine["docs"].to_numpy()
            running = before + np.cumsum(weight)
            at = int(np.searchsorted(running, targets[group]))  # first bucket whose running total reaches it
            step = -(-(hi - lo) // BUCKETS)
            new_lo = lo + int(buckets[at]) * step
            new_hi = min(hi, new_lo + step)
            new_before = int(running[at] - weight[at])
            if docs[at] == 1:
                cuts[group] = Cut(new_lo, new_hi, new_before)
                del open_[group]
            else:
                open_[group] = (new_lo, new_hi, new_before)
    assert not open_, f"hash collision: several documents share one hash in {sorted(open_)}"
    return cuts


def _totals(rows: ray.data.Dataset) -> dict[str, int]:
    table = grouped_sums(rows, lambda t: t.select(["group", "weight"]), ["group"], ["weight"])
    return dict(zip(table["group"].to_pylist(), table["weight"].to_pylist(), strict=True))
