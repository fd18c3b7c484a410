"""Exact dedup across all sources: documents whose normalised text is identical keep the smallest id.

The normalisation (case folded, whitespace runs collapsed) catches copies that differ only in layout.
The documents themselves are grouped by a hash partition of their text's key (one Ray Data groupby), and each
partition marks its duplicates in place: no node holds more than one partition, and nothing per document comes
back to the driver (it holds the document count, to size the partitions).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.dedup.cogroup import PART, key_partition, partitions
from dataengine.schema import reject_rows
from dataengine.shuffle import partition_map

STAGE = "exact_dedup"
KEY = "__dedup_key"
DOCS_PER_PARTITION = 20_000  # documents, with their text, grouped in one task's memory
_WS = re.compile(r"\s+")


def normalised_hash(text: str) -> str:
    norm = _WS.sub(" ", text.casefold()).strip()
    return hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _keyed(table: pa.Table, parts: int) -> pa.Table:
    """The documents with their key (null for rejected ones) and partition (of the key, else of the id)."""
    kept = pc.is_null(table["reject"]).to_numpy(zero_copy_only=False)
    texts = table["text"].to_pylist()
    keys = pa.array([normalised_hash(t) if k else None for t, k in zip(texts, kept, strict=True)], pa.string())
    part = np.where(kept, key_partition(pc.fill_null(keys, ""), parts), key_partition(table["id"], parts))
    return table.append_column(KEY, keys).append_column(PART, pa.array(part, pa.int32()))


def mark_group(group: pa.Table) -> pa.Table:
    """One partition, sorted by id: every kept document whose key was seen with a smaller id is rejected."""
    group = group.sort_by([("id", "ascending")])
    keys = group[KEY].combine_chunks()
    kept = pc.is_valid(keys).to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(kept)
    rejects: list[str | None] = [None] * group.num_rows
    details: list[str | None] = [None] * group.num_rows
    if len(idx):
        codes = keys.take(pa.array(idx)).dictionary_encode().indices.to_numpy(zero_copy_only=False)
        first = np.full(codes.max() + 1, -1, np.int64)
        first[codes[::-1]] = idx[::-1]  # the first (smallest id) row of each key
        ids = group["id"].to_pylist()
        for row, code in zip(idx.tolist(), codes.tolist(), strict=True):
            if first[code] != row:
                rejects[row] = f"{STAGE}:duplicate"
                details[row] = f"kept={ids[first[code]]}"
    return reject_rows(group.drop_columns([KEY, PART]), rejects, details)


def exact_dedup(docs: ray.data.Dataset) -> ray.data.Dataset:
    """The documents with exact duplicates rejected (``reject_detail`` names the kept id)."""
    docs = docs.materialize()  # read twice (count, groupby): the upstream stages run once
    parts = partitions(docs.count(), DOCS_PER_PARTITION)
    keyed = docs.map_batches(_keyed, fn_kwargs={"parts": parts}, batch_format="pyarrow")
    return partition_map(keyed, PART, parts, mark_group)
