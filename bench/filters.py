"""Quality-rule throughput per core: our English chain against datatrove's filter classes on the same pages.

Same documents (pages of the embedded sample extracted as the build extracts them), same process, same run:
our quality stage (``english_rules: fast``, one shared split per document) on Arrow batches of 256, then
datatrove's own classes (Gopher repetition and quality, FineWeb, C4, with the same thresholds; the length
rule is ours on both sides) on the same texts, each document through the chain until its first failing rule.
CPU seconds of this process (``time.process_time``), so jobs sharing the machine do not count against either
side.  Ours starts with an empty chunk memory: the first pass is what a fresh worker does; a second pass over
the same pages (memory warm) is reported beside it.  Every document's decision (keep, or the first failing
rule and its reason) is compared, and disagreements are printed by rule.  The Chinese and code chains have
no datatrove counterpart (FineWeb-2's Chinese filters need jieba; datatrove has no code rules): each is timed
against its own previous implementation (the per-document rules kept in ``tests/rules_reference.py``: character
loops, ``Counter``, datatrove's ``GopherRepetitionFilter`` on characters) in the same stage on the same documents,
best of ``REPEATS`` alternating rounds, and every decision is asserted equal.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document

from bench.corpus import page_paths, sample_by_name
from bench.harness import Row
from dataengine.config import FilterSpec, PipelineConfig, SourceConfig
from dataengine.extract import extract_batch
from dataengine.filters import QualityStage, build_rule
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.files import expand
from tests.rules_reference import REFERENCES

DOCS_PER_DOMAIN = int(os.environ.get("BENCH_FILTERS_DOCS", 1_000))  # per domain; the sample has 4,538 English pages
BATCH = 256
REPEATS = 3  # rounds of the Chinese and code chains, ours and the previous rules in turn; the best of each counts
SOURCES = [
    SourceConfig(name="web_en", kind="html_dir", lang="en", paths=[]),
    SourceConfig(name="web_zh", kind="html_dir", lang="zh", paths=[]),
    SourceConfig(name="code", kind="source_dir", paths=[]),
]


def sample_tables(limit: int) -> dict[str, pa.Table]:
    """Extracted documents per source, every k-th page/file so that each site and repository is represented."""
    sources = sample_by_name()
    rows: dict[str, list[dict]] = {}
    for name in ("web_en", "web_zh"):
        paths = page_paths(sources[name])
        rows[name] = [
            doc_row(source=name, kind="html", url=p, raw=Path(p).read_bytes())
            for p in paths[:: max(1, len(paths) // limit)][:limit]
        ]
    files = [
        (path, os.path.relpath(path, spec.path))
        for spec in sources["code"].path_specs()
        for path in expand(spec.path)
        if os.path.isfile(path) and not os.path.islink(path)
    ]
    rows["code"] = [
        doc_row(source="code", kind="code", url=rel, raw=Path(path).read_bytes(), meta={"path": rel})
        for path, rel in files[:: max(1, len(files) // limit)][:limit]
    ]
    tables = {}
    for name, batch in rows.items():
        table = extract_batch(rows_to_table(batch))
        tables[name] = table.filter(pc.is_null(table["reject"]))
    return tables


def cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process spent in ``fn`` and its result."""
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def ours(table: pa.Table, filters: list[FilterSpec], previous: bool = False) -> tuple[float, list[str | None]]:
    """CPU seconds and per-document decisions of the quality stage over batches of ``BATCH`` rows; ``previous``:
    with the per-document rules the vectorised ones replaced in place of each of them."""
    stage = QualityStage(filters, SOURCES)
    if previous:
        params = {spec.name: spec.params for spec in filters}
        stage.chains = {
            source: [(name, REFERENCES[name](**params[name]) if name in REFERENCES else rule, how)
                     for name, rule, how in chain]
            for source, chain in stage.chains.items()
        }  # fmt: skip

    def go() -> list[str | None]:
        batches = (stage(table.slice(at, BATCH)) for at in range(0, table.num_rows, BATCH))
        return [r for batch in batches for r in batch["reject"].to_pylist()]

    return cpu(go)


def datatrove(texts: list[str], filters: list[FilterSpec]) -> tuple[float, list[str | None]]:
    """CPU seconds and decisions of datatrove's classes (the length rule is ours) on the same chain."""
    chain = [(spec.name, build_rule(spec, english_rules="datatrove")) for spec in filters]

    def go() -> list[str | None]:
        out = []
        for text in texts:
            reason = None
            for name, rule in chain:
                failed = rule.filter.filter(Document(text=text, id="")) if hasattr(rule, "filter") else rule(text)
                if failed is not True and failed is not None:
                    reason = f"{name}:{failed[1] if isinstance(failed, tuple) else failed}"
                    break
            out.append(reason)
        return out

    return cpu(go)


def disagreements(a: list[str | None], b: list[str | None]) -> Counter[str]:
    """Documents decided differently, by the rule that decided first (ours, else datatrove's)."""
    return Counter(((x or y) or "keep").split(":")[0] for x, y in zip(a, b, strict=True) if x != y)


def run() -> list[Row]:
    tables = sample_tables(DOCS_PER_DOMAIN)
    chain = PipelineConfig().filters
    en = [f for f in chain if "en" in f.domains]
    table = tables["web_en"]
    texts = table["text"].to_pylist()
    n, mb = len(texts), sum(len(t.encode()) for t in texts) / 1e6
    ours_s, ours_reasons = ours(table, en)
    warm_s, warm_reasons = ours(table, en)
    peer_s, peer_reasons = datatrove(texts, en)
    assert warm_reasons == ours_reasons
    differ = disagreements(ours_reasons, peer_reasons)
    kept = sum(r is None for r in ours_reasons)
    print(f"English: {n} pages, {mb:.2f} MB, {kept} kept; decisions differing from datatrove's: {dict(differ) or 0}")
    print(f"  by reason (ours): {dict(Counter(ours_reasons))}")
    peer_name = "datatrove's filter classes, same chain, same process"
    rows = [
        Row(f"English chain, {n:,} pages ({kept:,} kept), fresh worker", n / ours_s, peer_name, n / peer_s,
            "docs/s per core (CPU time)"),
        Row(f"English chain, {n:,} pages, fresh worker", mb / ours_s, peer_name, mb / peer_s,
            "MB/s per core (CPU time)"),
        Row(f"English chain, {n:,} pages, second pass (chunk memory warm)", n / warm_s, peer_name, n / peer_s,
            "docs/s per core (CPU time)"),
        Row(f"English chain decisions equal to datatrove's ({sum(differ.values())} differ)",
            1 - sum(differ.values()) / n, "datatrove's own decisions", 1.0, "share of documents"),
    ]  # fmt: skip
    for name, domain in (("web_zh", "zh"), ("code", "code")):
        rows += chain_against_previous(tables[name], [f for f in chain if domain in f.domains], domain)
    return rows


def chain_against_previous(table: pa.Table, filters: list[FilterSpec], domain: str) -> list[Row]:
    """The chain against the per-document rules it replaced: docs/s and MB/s per core, equal decisions asserted."""
    best = {False: float("inf"), True: float("inf")}
    decisions = {}
    for _ in range(REPEATS):
        for previous in (True, False):
            seconds, decisions[previous] = ours(table, filters, previous)
            best[previous] = min(best[previous], seconds)
    assert decisions[True] == decisions[False], "the vectorised rules decide differently from the per-document ones"
    n, mb = table.num_rows, sum(len(t.encode()) for t in table["text"].to_pylist()) / 1e6
    kept = sum(r is None for r in decisions[False])
    what = f"{'Chinese' if domain == 'zh' else 'code'} chain, {n:,} docs, {mb:.1f} MB ({kept:,} kept)"
    peer = "previous per-document rules (tests/rules_reference.py), same decisions"
    print(f"{what}: by reason {dict(Counter(decisions[False]))}")
    return [
        Row(what, n / best[False], peer, n / best[True], "docs/s per core (CPU time)"),
        Row(what, mb / best[False], peer, mb / best[True], "MB/s per core (CPU time)"),
    ]
