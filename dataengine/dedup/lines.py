"""CCNet-style line dedup within a source: lines found in many documents of one source are boilerplate
(navigation, footers, "previous / next" links, licence notices) and are removed from every document.

A line is compared after normalisation (case, digits, punctuation, whitespace), so "Page 3 of 12" and
"page 4 of 12" are one line.  Two shuffles, no per-line or per-document state on the driver:

1. one row per (document, distinct line) grouped by a partition of the (source, line hash) key: each line found
   in ``min_docs`` documents or more yields one row per document holding it, ``(id, key)``;
2. those rows co-grouped with the documents by a partition of the id (``cogroup``): each partition removes its
   documents' boilerplate lines.

The driver holds the document count (to size partitions) and the lines and bytes removed per source.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.config import LineDedupConfig, ShingleSpec
from dataengine.dedup.cogroup import arrow_schema, cogroup, partitions
from dataengine.dedup.minhash import U64, fmix64, gaps, hash_strings, normalise
from dataengine.extract.spans import code_share, remap, spans_array, spans_of
from dataengine.schema import reject_rows, set_column, stable_hash
from dataengine.shuffle import partition_map

STAGE = "line_dedup"
_NORM = ShingleSpec()  # lower case, digit runs -> 0, punctuation -> space
DOCS_PER_PARTITION = 20_000  # documents, with their text, grouped in one task's memory


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
    """One row per (document, distinct non-blank line outside code blocks): the line's key, its count and bytes in
    the document."""
    table = table.filter(pa.array(_enabled(table, domain_of, cfg)))
    sources = table["source"].to_pylist()
    lines = Lines(table["text"].combine_chunks(), sources)
    lengths = pc.utf8_length(lines.flat).to_numpy(zero_copy_only=False).astype(np.int64)
    code = _in_code(lines.parent, _line_starts(lines.parent, lengths), lengths, spans_of(table["code_spans"]))
    real = (lines.keys != 0) & ~code  # lines of code blocks are never counted as boilerplate
    parent, keys, nbytes = lines.parent[real], lines.keys[real], lines.nbytes[real]
    order = np.lexsort((keys, parent))
    parent, keys, nbytes = parent[order], keys[order], nbytes[order]
    new = np.ones(len(keys), dtype=bool)
    new[1:] = (keys[1:] != keys[:-1]) | (parent[1:] != parent[:-1])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(keys)))
    doc = pa.array(parent[starts], pa.int64())
    return pa.table(
        {
            "part": (keys[starts] % U64(parts)).astype(np.int32),
            "key": keys[starts],
            "id": table["id"].take(doc),
            "source": pa.array(sources, pa.string()).take(doc),
            "lines": counts.astype(np.int64),
            "bytes": np.add.reduceat(nbytes, starts) if len(starts) else np.zeros(0, np.int64),
        }
    )


def _boilerplate(group: pa.Table, min_docs: int) -> pa.Table:
    """The rows of the lines found in ``min_docs`` documents or more, sorted by (id, key)."""
    keys, inverse, docs = np.unique(group["key"].to_numpy(), return_inverse=True, return_counts=True)
    frequent = group.filter(pa.array(docs[inverse] >= min_docs)).select(["id", "key", "source", "lines", "bytes"])
    return frequent.sort_by([("id", "ascending"), ("key", "ascending")])


def _totals(table: pa.Table) -> pa.Table:
    return table.group_by("source", use_threads=False).aggregate([("lines", "sum"), ("bytes", "sum")])


def pairs_in(rows: np.ndarray, keys: np.ndarray, set_rows: np.ndarray, set_keys: np.ndarray) -> np.ndarray:
    """Whether each ``(rows[i], keys[i])`` is one of the pairs ``(set_rows[j], set_keys[j])`` (sort-based)."""
    r = np.concatenate([set_rows, rows])
    k = np.concatenate([set_keys, keys])
    probe = np.concatenate([np.zeros(len(set_rows), np.int8), np.ones(len(rows), np.int8)])
    order = np.lexsort((probe, k, r))  # within equal pairs, the set's member sorts first
    r, k, probe = r[order], k[order], probe[order]
    new = np.ones(len(r), dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (k[1:] != k[:-1])
    starts = np.flatnonzero(new)
    first = np.repeat(starts, np.diff(np.append(starts, len(r))))
    found = np.empty(len(r), dtype=bool)
    found[order] = probe[first] == 0
    return found[len(set_rows) :]


def _line_starts(parent: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each line's first character in its document (lines of a document are consecutive, joined by newlines)."""
    ends = np.cumsum(lengths + 1)
    first = np.ones(len(parent), dtype=bool)
    first[1:] = parent[1:] != parent[:-1]
    base = np.maximum.accumulate(np.where(first, ends - lengths - 1, 0))
    return ends - lengths - 1 - base


def _in_code(
    parent: np.ndarray, starts: np.ndarray, lengths: np.ndarray, spans: list[list[tuple[int, int]]]
) -> np.ndarray:
    """Lines (with their newline) that overlap one of their document's code spans."""
    inside = np.zeros(len(parent), dtype=bool)
    with_spans = np.array([bool(s) for s in spans], dtype=bool)
    for j in np.flatnonzero(with_spans[parent]):
        lo, hi = starts[j], starts[j] + lengths[j]
        inside[j] = any(s <= hi and lo < e for s, e in spans[parent[j]])
    return inside


def _line_edits(dropped: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[tuple[int, int, int]]:
    """The removals that dropping lines makes in a document's text, one per run of dropped lines, as ``spans.remap``
    takes them: a run removes its lines and the newline after it, or before it when it ends the text."""
    edits, last, j = [], len(dropped) - 1, 0
    while j <= last:
        if not dropped[j]:
            j += 1
            continue
        a = j
        while j + 1 <= last and dropped[j + 1]:
            j += 1
        end = int(starts[j] + lengths[j])
        if j < last:
            edits.append((int(starts[a]), end + 1, 0))
        else:
            edits.append((max(int(starts[a]) - 1, 0), end, 0))
        j += 1
    return edits


def remove_lines(
    docs: pa.Table | None, boilerplate: pa.Table | None, domain_of: dict[str, str], cfg: LineDedupConfig
) -> pa.Table:
    """``cogroup`` function: one partition's documents (sorted by id) without their boilerplate lines (``(id,
    key)`` rows); a document left blank is rejected.  Lines inside code blocks are never dropped, and the code spans
    move with the text."""
    assert docs is not None, "every boilerplate row's id is a document's"
    table = docs.sort_by([("id", "ascending")])
    if boilerplate is None:
        return table
    listed = pc.is_in(table["id"], value_set=boilerplate["id"]).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(_enabled(table, domain_of, cfg) & listed)  # only the documents that hold boilerplate
    if len(rows) == 0:
        return table
    picked = pa.array(rows, pa.int64())
    lines = Lines(table["text"].take(picked).combine_chunks(), table["source"].take(picked).to_pylist())
    owner = pc.index_in(boilerplate["id"], value_set=table["id"].take(picked)).to_numpy(zero_copy_only=False)
    drop = pairs_in(lines.parent, lines.keys, owner, boilerplate["key"].to_numpy()) & (lines.keys != 0)
    lengths = pc.utf8_length(lines.flat).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = _line_starts(lines.parent, lengths)
    spans = spans_of(table["code_spans"].take(picked))
    drop &= ~_in_code(lines.parent, starts, lengths, spans)  # a repeated "}" or "return 0;" is code, not boilerplate
    if not drop.any():
        return table
    keep = ~drop
    offsets = np.concatenate([[0], np.cumsum(np.bincount(lines.parent[keep], minlength=len(rows)))])
    kept_lines = lines.flat.filter(pa.array(keep))
    cleaned = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), kept_lines), "\n")
    content = np.bincount(lines.parent[keep & (lines.keys != 0)], minlength=len(rows)) > 0

    texts = table["text"].combine_chunks().to_pylist()
    all_spans = spans_of(table["code_spans"])
    shares = table["code_share"].to_pylist()
    rejects: list[str | None] = [None] * table.num_rows
    for i, row in enumerate(rows.tolist()):
        texts[row] = cleaned[i].as_py()
        if spans[i]:
            mine = slice(*np.searchsorted(lines.parent, [i, i + 1]))  # a document's lines are consecutive
            all_spans[row] = remap(spans[i], _line_edits(drop[mine], starts[mine], lengths[mine]))
            shares[row] = code_share(texts[row], all_spans[row])
        if not content[i]:
            rejects[row] = f"{STAGE}:only_boilerplate"
    table = set_column(table, "text", pa.array(texts, pa.string()))
    table = set_column(table, "code_spans", spans_array(all_spans))
    table = set_column(table, "code_share", pa.array(shares, pa.float32()))
    return reject_rows(table, rejects)


BOILERPLATE_SCHEMA = pa.schema([("id", pa.string()), ("key", pa.uint64())])


def boilerplate_lines(
    docs: ray.data.Dataset, domain_of: dict[str, str], cfg: LineDedupConfig, parts: int
) -> tuple[ray.data.Dataset | None, dict[str, dict[str, int]]]:
    """The ``(id, key)`` rows of the boilerplate lines to remove (None when there is none), and per enabled source
    the lines and bytes they hold.  ``parts``: the partitions of the line shuffle (a function of the data)."""
    rows = docs.map_batches(
        _line_rows, fn_kwargs={"domain_of": domain_of, "cfg": cfg, "parts": parts}, batch_format="pyarrow"
    )
    found = partition_map(rows, "part", parts, _boilerplate, {"min_docs": cfg.min_docs})
    found = found.materialize()
    removed = {name: {"lines": 0, "bytes": 0} for name, domain in sorted(domain_of.items()) if domain in cfg.domains}
    for row in found.map_batches(_totals, batch_format="pyarrow").iter_rows():  # O(blocks x sources) rows
        removed[row["source"]]["lines"] += row["lines_sum"]
        removed[row["source"]]["bytes"] += row["bytes_sum"]
    if not any(r["lines"] for r in removed.values()):
        return None, removed
    return found.select_columns(["id", "key"]), removed


def line_dedup(
    docs: ray.data.Dataset, domain_of: dict[str, str], cfg: LineDedupConfig
) -> tuple[ray.data.Dataset, dict[str, dict[str, int]]]:
    """The documents without their boilerplate lines, and per enabled source the lines and bytes removed (line
    dedup alone; ``near_dedup`` applies the same removal inside its own passes, never holding this copy).

    ``docs`` is read twice (lines, then the co-group): pass a materialised dataset.
    """
    parts = partitions(docs.count(), DOCS_PER_PARTITION)
    boilerplate, removed = boilerplate_lines(docs, domain_of, cfg, parts)
    if boilerplate is None:
        return docs, removed
    schemas = (arrow_schema(docs), BOILERPLATE_SCHEMA)
    out = cogroup(docs, boilerplate, ("id", "id"), schemas, parts, remove_lines, {"domain_of": domain_of, "cfg": cfg})
    return out, removed
