"""Exact dedup across all sources: documents whose normalised text is identical keep the smallest id.

The normalisation (case folded, whitespace runs collapsed) catches copies that differ only in layout.
Groups are formed by a Ray Data groupby on the text hash, so no node holds all documents; only the ids of
the duplicates (with the id each one duplicates) come back to the driver.
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.schema import reject_rows

STAGE = "exact_dedup"
_WS = re.compile(r"\s+")


def normalised_hash(text: str) -> str:
    norm = _WS.sub(" ", text.casefold()).strip()
    return hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _keys(table: pa.Table) -> pa.Table:
    kept = table.filter(pc.is_null(table["reject"]))
    keys = [normalised_hash(t) for t in kept["text"].to_pylist()]
    return pa.table({"id": kept["id"], "dedup_key": pa.array(keys, pa.string())})


def _duplicates_in_group(group: pa.Table) -> pa.Table:
    ids = sorted(group["id"].to_pylist())
    return pa.table({"id": pa.array(ids[1:], pa.string()), "kept": pa.array([ids[0]] * (len(ids) - 1), pa.string())})


def find_duplicates(ds: ray.data.Dataset) -> dict[str, str]:
    """``{duplicate id: kept id}`` for every kept document whose normalised text was seen with a smaller id."""
    keys = ds.map_batches(_keys, batch_format="pyarrow")
    dups = keys.groupby("dedup_key").map_groups(_duplicates_in_group, batch_format="pyarrow")
    return {row["id"]: row["kept"] for row in dups.iter_rows()}


def mark_duplicates(table: pa.Table, duplicates: dict[str, str]) -> pa.Table:
    """Ray Data ``map_batches`` function: reject the duplicates, naming the kept id in ``reject_detail``."""
    ids = table["id"].to_pylist()
    rejects = [f"{STAGE}:duplicate" if i in duplicates else None for i in ids]
    details = [f"kept={duplicates[i]}" if i in duplicates else None for i in ids]
    return reject_rows(table, rejects, details)
