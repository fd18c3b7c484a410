"""The document record every stage passes along, and helpers to mark rejections.

One Arrow schema for every document.  A stage never deletes a row: it fills the ``reject``
column (``"stage:reason"``) of the rows it drops, so that the funnel can count every input
document at the end (documents in = documents out + held out + rejections).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Code blocks of a document: sorted, non-overlapping ``[start, end)`` code-point offsets into ``text``
# (dataengine/extract/spans.py).  Filled at extraction; a stage that edits text moves them with it.
CODE_SPANS = pa.list_(pa.struct([pa.field("start", pa.int32()), pa.field("end", pa.int32())]))

# Columns of a document between stages.  ``raw`` holds undecoded bytes (HTML, a source file) until
# the extract stage turns them into ``text``; ``reject_detail`` says more about a rejection (for
# dedup: the id that was kept).
DOC_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("kind", pa.string()),  # html | text | code: tells the extract stage what ``raw`` is
        pa.field("url", pa.string()),
        pa.field("raw", pa.binary()),
        pa.field("text", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),  # language-ID confidence (text sources)
        pa.field("quality_score", pa.float32()),  # P(well-edited prose) of the quality model (en, zh text)
        pa.field("meta", pa.string()),
        pa.field("n_bytes", pa.int64()),  # size of the input as read (raw bytes or UTF-8 text)
        pa.field("code_spans", CODE_SPANS),  # code blocks of ``text`` (empty until extraction, and for prose)
        pa.field("code_share", pa.float32()),  # share of ``text``'s characters in code_spans (1.0 for code files)
        pa.field("reject", pa.string()),
        pa.field("reject_detail", pa.string()),
    ]
)

# Columns of a training shard (Arrow IPC stream); ``tokens`` is uint16 when the vocabulary fits.
SHARD_COLUMNS = ("tokens", "source", "id")


def make_id(source: str, url: str, content: bytes) -> str:
    """A stable document id: source name + a hash of the url/path + a hash of the content."""
    where = hashlib.blake2b(url.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()
    what = hashlib.blake2b(content, digest_size=4).hexdigest()
    return f"{source}/{where}{what}"


def stable_hash(*parts: Any) -> int:
    """A 64-bit hash of ``parts`` that is the same on every machine and in every process."""
    joined = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(joined, digest_size=8).digest(), "little")


def unit_fraction(*parts: Any) -> float:
    """``stable_hash`` mapped to [0, 1): used for hash-based sampling (held-out slices)."""
    return stable_hash(*parts) / 2.0**64


def doc_row(
    *,
    source: str,
    kind: str,
    url: str,
    raw: bytes | None = None,
    text: str | None = None,
    lang: str | None = None,
    meta: dict[str, Any] | None = None,
    reject: str | None = None,
    reject_detail: str | None = None,
) -> dict[str, Any]:
    """Build one document row (a dict matching ``DOC_SCHEMA``); readers call this."""
    content = raw if raw is not None else (text or "").encode("utf-8", "surrogatepass")
    return {
        "id": make_id(source, url, content),
        "source": source,
        "kind": kind,
        "url": url,
        "raw": raw,
        "text": text,
        "lang": lang,
        "lang_score": None,
        "quality_score": None,
        "meta": json.dumps(meta or {}, ensure_ascii=False, sort_keys=True),
        "n_bytes": len(content),
        "code_spans": [],
        "code_share": 0.0,
        "reject": reject,
        "reject_detail": reject_detail,
    }


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows from ``doc_row`` as an Arrow table with ``DOC_SCHEMA`` (an empty list gives an empty table)."""
    return pa.Table.from_pylist(rows, schema=DOC_SCHEMA)


def kept_mask(table: pa.Table) -> np.ndarray:
    """Boolean mask of rows no stage has rejected yet."""
    return pc.is_null(table["reject"]).to_numpy(zero_copy_only=False)


def reject_rows(table: pa.Table, rejects: list[str | None], details: list[str | None] | None = None) -> pa.Table:
    """Set ``reject`` (a ``"stage:reason"`` string per row, or None) on rows that were still kept.

    Rows already rejected by an earlier stage keep their first rejection, so every document is counted
    exactly once.
    """
    assert len(rejects) == table.num_rows
    old = table["reject"].to_pylist()
    old_detail = table["reject_detail"].to_pylist()
    new, new_detail = [], []
    for i, (prev, reject) in enumerate(zip(old, rejects, strict=True)):
        if prev is None and reject is not None:
            new.append(reject)
            new_detail.append(details[i] if details else None)
        else:
            new.append(prev)
            new_detail.append(old_detail[i])
    table = set_column(table, "reject", pa.array(new, pa.string()))
    return set_column(table, "reject_detail", pa.array(new_detail, pa.string()))


def with_stage(stage: str, reasons: list[str | None]) -> list[str | None]:
    """``["too_short", None]`` -> ``["stage:too_short", None]``."""
    return [f"{stage}:{r}" if r else None for r in reasons]


def set_column(table: pa.Table, name: str, values: pa.Array | list) -> pa.Table:
    """Replace (or append) column ``name``."""
    idx = table.schema.get_field_index(name)
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array(values, table.schema.field(name).type if idx >= 0 else None)
    if idx >= 0:
        return table.set_column(idx, name, values)
    return table.append_column(name, values)
