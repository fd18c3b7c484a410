"""The extract stage: raw bytes (HTML pages, source files) -> NFC-normalised text, with a reason when it fails."""

from __future__ import annotations

import json
import unicodedata

import pyarrow as pa

from dataengine.extract.code import decode_code
from dataengine.extract.html import extract_html
from dataengine.schema import reject_rows, set_column, with_stage

STAGE = "extract"


def extract_batch(table: pa.Table) -> pa.Table:
    """Ray Data ``map_batches`` function: fill ``text`` (and title/language metadata), drop ``raw``."""
    rows = table.select(["kind", "url", "raw", "text", "lang", "meta", "reject"]).to_pylist()
    texts, langs, metas, reasons = [], [], [], []
    for row in rows:
        text, lang, meta, reason = row["text"], row["lang"], row["meta"], None
        if row["reject"] is None:
            text, lang, meta, reason = _extract_one(row)
        texts.append(unicodedata.normalize("NFC", text) if text is not None else None)
        langs.append(lang)
        metas.append(meta)
        reasons.append(reason)
    table = set_column(table, "text", pa.array(texts, pa.string()))
    table = set_column(table, "lang", pa.array(langs, pa.string()))
    table = set_column(table, "meta", pa.array(metas, pa.string()))
    table = set_column(table, "raw", pa.nulls(table.num_rows, pa.binary()))
    return reject_rows(table, with_stage(STAGE, reasons))


def _extract_one(row: dict) -> tuple[str | None, str | None, str, str | None]:
    kind, raw, lang, meta = row["kind"], row["raw"], row["lang"], row["meta"]
    if kind == "text":
        # NUL characters (valid in JSON as \u0000) carry nothing and read as non-words to the quality filters
        text = (row["text"] or "").replace("\0", "")
        return (text, lang, meta, None) if text.strip() else (None, lang, meta, "empty")
    if kind == "html":
        text, title, reason = extract_html(raw, row["url"])
        if title:
            meta = json.dumps({**json.loads(meta), "title": title}, ensure_ascii=False, sort_keys=True)
        return text, lang, meta, reason
    if kind == "code":
        path = json.loads(meta).get("path") or row["url"]
        text, language, reason = decode_code(raw, path)
        return text, language, meta, reason
    raise AssertionError(f"unknown document kind {kind!r}")
