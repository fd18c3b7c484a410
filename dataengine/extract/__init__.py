"""The extract stage: raw bytes (HTML pages, source files) -> NFC-normalised text and its code blocks, or a reason.

Code blocks become ``code_spans`` and ``code_share`` (dataengine/extract/spans.py): ``<pre>``/``<code>`` blocks of
HTML pages, fenced and indented blocks of text documents, the whole file for source code.  Web and text documents
have their whitespace-only lines emptied outside code blocks before any rule sees them.

HTML pages go through the engine their source names (``SourceConfig.extract``): trafilatura (the default) or
resiliparse (faster, less faithful to the main text: ``python -m bench extract`` measures both on the same pages).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Collection, Mapping

import pyarrow as pa

from dataengine.extract.code import decode_code
from dataengine.extract.html import extract_page
from dataengine.extract.html_resiliparse import extract_page_resiliparse
from dataengine.extract.markdown import markdown_spans
from dataengine.extract.spans import Span, code_share, normalize_whitespace, spans_array, spans_of
from dataengine.schema import reject_rows, set_column, with_stage

STAGE = "extract"
# (raw page, url) -> (text, code_spans, title, reject_reason)
HtmlEngine = Callable[[bytes, str], tuple[str | None, list[Span], str | None, str | None]]
# HTML engines by the name a source's ``extract`` setting gives (config.SourceConfig.extract)
ENGINES: dict[str, HtmlEngine] = {
    "trafilatura": extract_page,
    "resiliparse": extract_page_resiliparse,
}


def extract_batch(
    table: pa.Table, code_sources: Collection[str] = (), engines: Mapping[str, str] | None = None
) -> pa.Table:
    """Ray Data ``map_batches`` function: fill ``text``, code spans (and title/language metadata), drop ``raw``.

    ``code_sources`` names the sources whose ``text`` documents are code (a jsonl/parquet dump of source files,
    The Stack style): they are one code block each, their whitespace left as it is.  ``engines`` maps a source
    to the HTML engine its pages go through (a name in ``ENGINES``); sources not named get trafilatura.
    """
    engines = engines or {}
    rows = table.select(["source", "kind", "url", "raw", "text", "lang", "meta", "reject"]).to_pylist()
    old_spans = spans_of(table["code_spans"])
    texts, all_spans, langs, metas, reasons = [], [], [], [], []
    for row, spans in zip(rows, old_spans, strict=True):
        text, lang, meta, reason = row["text"], row["lang"], row["meta"], None
        if row["reject"] is None:
            engine = ENGINES[engines.get(row["source"], "trafilatura")]
            text, spans, lang, meta, reason = _extract_one(row, row["source"] in code_sources, engine)
        texts.append(text)
        all_spans.append(spans)
        langs.append(lang)
        metas.append(meta)
        reasons.append(reason)
    table = set_column(table, "text", pa.array(texts, pa.string()))
    table = set_column(table, "code_spans", spans_array(all_spans))
    shares = [code_share(t, s) for t, s in zip(texts, all_spans, strict=True)]
    table = set_column(table, "code_share", pa.array(shares, pa.float32()))
    table = set_column(table, "lang", pa.array(langs, pa.string()))
    table = set_column(table, "meta", pa.array(metas, pa.string()))
    table = set_column(table, "raw", pa.nulls(table.num_rows, pa.binary()))
    return reject_rows(table, with_stage(STAGE, reasons))


def _extract_one(
    row: dict, is_code: bool, engine: HtmlEngine
) -> tuple[str | None, list[Span], str | None, str, str | None]:
    kind, raw, lang, meta = row["kind"], row["raw"], row["lang"], row["meta"]
    if kind == "text":
        # NUL characters (valid in JSON as \u0000) carry nothing and read as non-words to the quality filters
        text = unicodedata.normalize("NFC", (row["text"] or "").replace("\0", ""))
        if not text.strip():
            return None, [], lang, meta, "empty"
        if is_code:
            return text, [(0, len(text))], lang, meta, None
        text, spans = normalize_whitespace(text, markdown_spans(text))
        return text, spans, lang, meta, None
    if kind == "html":
        text, spans, title, reason = engine(raw, row["url"])
        if title:
            meta = json.dumps({**json.loads(meta), "title": title}, ensure_ascii=False, sort_keys=True)
        return text, spans, lang, meta, reason
    if kind == "code":
        path = json.loads(meta).get("path") or row["url"]
        text, language, reason = decode_code(raw, path)
        if text is None:
            return None, [], language, meta, reason
        text = unicodedata.normalize("NFC", text)
        return text, [(0, len(text))], language, meta, None
    raise AssertionError(f"unknown document kind {kind!r}")
