"""CCNet-style line dedup within a source: lines found in many documents of one source are boilerplate
(navigation, footers, "previous / next" links, licence notices) and are removed from every document.

A line is compared after normalisation (case, digits, punctuation, whitespace), so "Page 3 of 12" and
"page 4 of 12" are one line.  Counting is a Ray Data groupby on a partition of the (source, line hash) key:
no node holds all lines; only the hashes of the boilerplate lines (at most lines / ``min_docs``) come back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.config import LineDedupConfig, ShingleSpec
from dataengine.dedup.minhash import U64, fmix64, gaps, hash_strings, normalise
from dataengine.schema import reject_rows, set_column, stable_hash

STAGE = "line_dedup"
_NORM = ShingleSpec()  # lower case, digit runs -> 0, punctuation -> space


class Lines:
    """The lines of a batch's texts: each with its document (``parent``), key (0 = blank) and UTF-8 size."""

    def __init__(self, texts: pa.Array, sources: list[str]) -> None:
        self.lists = pc.split_pattern(texts, "\n")
        self.flat = self.lists.flatten()
        self.parent = pc.list_parent_indices(self.lists).to_numpy(zero_copy_only=False)
        norm = pc.utf8_trim_whitespace(pc.replace_substring_regex(normalise(self.flat, _NORM), gaps(_NORM), " "))
        salts = np.array([stable_hash("line", s) for s in sources], dtype=U64)
        keys = fmix64(hash_strings(norm) ^ salts[self.parent])
        self.keys = np.where(pc.binary_length(norm).to_numpy(zero_copy_only=False) > 0, keys, U64(0))
        self.nbytes = pc.binary_length(self.flat).to_numpy(zero_copy_only=False).astype(np.int64)


def _enabled(table: pa.Table, domain_of: dict[str, str], cfg: LineDedupConfig) -> np.ndarray:
    kept = pc.is_null(table["reject"]).to_numpy(zero_copy_only=False)
    on = np.array([domain_of[s] in cfg.domains for s in table["source"].to_pylist()], dtype=bool)
    return kept & on


def _line_rows(table: pa.Table, domain_of: dict[str, str], cfg: LineDedupConfig, parts: int) -> pa.Table:
    """One row per (document, distinct non-blank line): the line's key, its count and bytes in the document."""
    table = table.filter(pa.array(_enabled(table, domain_of, cfg)))
    sources = table["source"].to_pylist()
    lines = Lines(table["text"].combine_chunks(), sources)
    real = lines.keys != 0
    parent, keys, nbytes = lines.parent[real], lines.keys[real], lines.nbytes[real]
    order = np.lexsort((keys, parent))
    parent, keys, nbytes = parent[order], keys[order], nbytes[order]
    new = np.ones(len(keys), dtype=bool)
    new[1:] = (keys[1:] != keys[:-1]) | (parent[1:] != parent[:-1])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(keys)))
    return pa.table(
        {
            "part": (keys[starts] % U64(parts)).astype(np.int32),
            "key": keys[starts],
            "source": pa.array(sources, pa.string()).take(pa.array(parent[starts], pa.int64())),
            "lines": counts.astype(np.int64),
            "bytes": np.add.reduceat(nbytes, starts) if len(starts) else np.zeros(0, np.int64),
        }
    )


def _boilerplate(group: pa.Table, min_docs: int) -> pa.Table:
    keys, inverse, docs = np.unique(group["key"].to_numpy(), return_inverse=True, return_counts=True)
    frequent = group.filter(pa.array(docs[inverse] >= min_docs))
    totals = frequent.group_by(["key", "source"]).aggregate([("lines", "sum"), ("bytes", "sum")])
    return totals.rename_columns(["key", "source", "lines", "bytes"])


def find_boilerplate(
    docs: ray.data.Dataset, domain_of: dict[str, str], cfg: LineDedupConfig
) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Sorted keys of the boilerplate lines, and per source the lines and bytes they take up."""
    parts = max(2, docs.count() // 20_000 + 1)
    rows = docs.map_batches(
        _line_rows, fn_kwargs={"domain_of": domain_of, "cfg": cfg, "parts": parts}, batch_format="pyarrow"
    )
    found = rows.groupby("part", num_partitions=parts).map_groups(
        _boilerplate, fn_kwargs={"min_docs": cfg.min_docs}, batch_format="pyarrow"
    )
    removed = {name: {"lines": 0, "bytes": 0} for name, domain in sorted(domain_of.items()) if domain in cfg.domains}
    keys = []
    for batch in found.iter_batches(batch_format="pyarrow", batch_size=None):
        keys.append(batch["key"].to_numpy())
        for row in batch.select(["source", "lines", "bytes"]).to_pylist():
            removed[row["source"]]["lines"] += row["lines"]
            removed[row["source"]]["bytes"] += row["bytes"]
    return np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=U64), removed


def remove_lines(table: pa.Table, boilerplate: np.ndarray, domain_of: dict[str, str], cfg: LineDedupConfig) -> pa.Table:
    """Ray Data ``map_batches`` function: drop boilerplate lines; a document left blank is rejected."""
    rows = np.flatnonzero(_enabled(table, domain_of, cfg))
    if len(rows) == 0 or len(boilerplate) == 0:
        return table
    picked = pa.array(rows, pa.int64())
    lines = Lines(table["text"].take(picked).combine_chunks(), table["source"].take(picked).to_pylist())
    pos = np.minimum(np.searchsorted(boilerplate, lines.keys), len(boilerplate) - 1)
    drop = (boilerplate[pos] == lines.keys) & (lines.keys != 0)
    if not drop.any():
        return table
    keep = ~drop
    offsets = np.concatenate([[0], np.cumsum(np.bincount(lines.parent[keep], minlength=len(rows)))])
    kept_lines = lines.flat.filter(pa.array(keep))
    cleaned = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), kept_lines), "\n")
    content = np.bincount(lines.parent[keep & (lines.keys != 0)], minlength=len(rows)) > 0

    texts = table["text"].combine_chunks().to_pylist()
    rejects: list[str | None] = [None] * table.num_rows
    for i, row in enumerate(rows.tolist()):
        texts[row] = cleaned[i].as_py()
        if not content[i]:
            rejects[row] = f"{STAGE}:only_boilerplate"
    table = set_column(table, "text", pa.array(texts, pa.string()))
    return reject_rows(table, rejects)
