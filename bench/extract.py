"""HTML extraction per core: resiliparse against trafilatura on the same pages, and how far their outputs agree.

Both engines run as the build runs them: the extract stage's function (``extract_batch``) over Arrow batches
of raw pages, with ``engines`` naming the engine, so decoding, code-block marking and whitespace normalisation
count on both sides.  Pages: every k-th page of the embedded sample's English and Chinese documentation sites
(the default build's crawled pages, read as files), and the pages the tests make (``tests/corpus.py``: licence
texts and Chinese sentences in a nav/article/footer template).  CPU seconds of this process
(``time.process_time``), best of ``REPEATS`` alternating rounds, so jobs sharing the machine count against
neither side.  Agreement, with trafilatura's output as the reference: bag-of-tokens F1 per page (words; CJK
characters one token each) averaged over pages both extract, the same F1 over the code-span text, and the
share of pages on which the default quality chain (code-aware) makes the same keep/drop decision.  The pages
with the lowest F1 are printed for a look by hand.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

from bench.corpus import page_paths, sample_by_name
from bench.harness import Row
from dataengine.config import PipelineConfig, SourceConfig
from dataengine.extract import extract_batch
from dataengine.extract.spans import spans_of
from dataengine.filters import QualityStage
from dataengine.schema import doc_row, rows_to_table
from tests.corpus import chinese_pages, english_pages

PAGES = int(os.environ.get("BENCH_EXTRACT_PAGES", 300))  # per page set; the sample has 4,538 English pages
REPEATS = 2
BATCH = 64
ENGINES = ("resiliparse", "trafilatura")
SOURCES = [
    SourceConfig(name="web_en", kind="html_dir", lang="en", paths=[]),
    SourceConfig(name="web_zh", kind="html_dir", lang="zh", paths=[]),
]
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[{CJK}]|[^\W{CJK}]+")


def page_sets(limit: int) -> dict[str, pa.Table]:
    """Raw-page tables (as the read stage leaves them) of every page set, at most ``limit`` pages each."""
    sources = sample_by_name()
    sets = {}
    for name, label in (("web_en", "Debian English docs"), ("web_zh", "Debian Chinese docs")):
        paths = page_paths(sources[name])
        rows = [
            doc_row(source=name, kind="html", url=p, raw=Path(p).read_bytes())
            for p in paths[:: max(1, len(paths) // limit)][:limit]
        ]
        sets[label] = rows_to_table(rows)
    made = [("web_en", n, h) for n, h in english_pages()] + [("web_zh", n, h) for n, h in chinese_pages(40)]
    sets["test pages"] = rows_to_table(
        [doc_row(source=s, kind="html", url=n, raw=h.encode()) for s, n, h in made[:: max(1, len(made) // limit)]]
    )
    return sets


def extract(table: pa.Table, engine: str) -> tuple[float, pa.Table]:
    """CPU seconds of the extract stage over ``table`` with every source on ``engine``, and its output."""
    engines = {s.name: engine for s in SOURCES}
    start = time.process_time()
    out = [extract_batch(table.slice(at, BATCH), engines=engines) for at in range(0, table.num_rows, BATCH)]
    return time.process_time() - start, pa.concat_tables(out)


def f1(reference: str, other: str) -> float:
    """Bag-of-tokens F1 of ``other`` against ``reference`` (1.0 when both have no tokens)."""
    ref, got = Counter(TOKEN.findall(reference)), Counter(TOKEN.findall(other))
    common = sum((ref & got).values())
    if not ref and not got:
        return 1.0
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def code_text(table: pa.Table) -> list[str]:
    """Each page's code-span text, blocks joined by newlines."""
    texts = table["text"].to_pylist()
    return ["\n".join(t[s:e] for s, e in spans) for t, spans in zip(texts, spans_of(table["code_spans"]), strict=True)]


def decisions(table: pa.Table) -> list[str | None]:
    """The extract verdict, else the default quality chain's (code-aware, as the build runs it)."""
    pipe = PipelineConfig()
    stage = QualityStage(pipe.filters, SOURCES, pipe.english_rules, pipe.code_page_share)
    extracted = table["reject"].to_pylist()
    kept = [i for i, r in enumerate(extracted) if r is None]
    judged = stage(table.take(kept))["reject"].to_pylist() if kept else []
    for i, verdict in zip(kept, judged, strict=True):
        extracted[i] = verdict
    return extracted


def compare(label: str, table: pa.Table) -> list[Row]:
    best = dict.fromkeys(ENGINES, float("inf"))
    out: dict[str, pa.Table] = {}
    for _ in range(REPEATS):
        for engine in ENGINES:
            seconds, out[engine] = extract(table, engine)
            best[engine] = min(best[engine], seconds)
    n, mb = table.num_rows, sum(len(r) for r in table["raw"].to_pylist()) / 1e6
    ours, ref = out["resiliparse"], out["trafilatura"]
    texts = list(zip(ref["text"].to_pylist(), ours["text"].to_pylist(), table["url"].to_pylist(), strict=True))
    scores = [(f1(t, r), url) for t, r, url in texts if t and r]
    both = [(t, r) for (t, r, _) in texts if t and r]
    code_pages = [
        (a, b) for (t, r, _), a, b in zip(texts, code_text(ref), code_text(ours), strict=True) if t and r and (a or b)
    ]
    verdicts = list(zip(decisions(ref), decisions(ours), strict=True))
    same = sum(a == b for a, b in verdicts)
    chars = sum(len(r) for _, r in both) / max(1, sum(len(t) for t, _ in both))
    print(
        f"{label}: {n} pages, {mb:.1f} MB; both extract {len(scores)}, only trafilatura "
        f"{sum(bool(t) and not r for t, r, _ in texts)}, only resiliparse "
        f"{sum(bool(r) and not t for t, r, _ in texts)}; resiliparse text {chars:.2f}x trafilatura's characters"
    )
    differ = Counter(f"{a or 'keep'} -> {b or 'keep'}" for a, b in verdicts if a != b)
    print(f"  decisions differing (trafilatura -> resiliparse): {dict(differ.most_common()) or 0}")
    for score, url in sorted(scores)[:3]:
        print(f"  lowest F1 {score:.3f}: {url}")
    mean_f1 = sum(s for s, _ in scores) / max(1, len(scores))
    code_f1 = sum(f1(a, b) for a, b in code_pages) / max(1, len(code_pages))
    peer = "trafilatura (the build's default engine), same pages, same run"
    agree = "trafilatura's output as reference"
    rows = [
        Row(f"extract {label}, {n} pages", n / best["resiliparse"], peer, n / best["trafilatura"],
            "docs/s per core (CPU time)"),
        Row(f"extract {label}, {mb:.1f} MB of HTML", mb / best["resiliparse"], peer, mb / best["trafilatura"],
            "MB/s per core (CPU time)"),
        Row(f"extract {label}: text token F1 ({len(scores)} pages)", mean_f1, agree, None, "F1"),
        Row(f"extract {label}: same quality-chain decision", same / n, agree, None, "share of pages"),
    ]  # fmt: skip
    if code_pages:
        rows.append(Row(f"extract {label}: code-span token F1 ({len(code_pages)} pages with code)", code_f1, agree,
                        None, "F1"))  # fmt: skip
    return rows


def run() -> list[Row]:
    return [row for label, table in page_sets(PAGES).items() for row in compare(label, table)]
