"""What ``pipeline.code_aware`` changes in a build: pages and tokens per rule with the switch on and off.

The quality stage tags every page whose verdict the switch changes (``code_aware_change``: the code-blind and
the code-aware verdicts), so one build shows both settings: the changes are summed per (source, code-blind
verdict, code-aware verdict) with ``aggregate.grouped_sums``, and a few pages per change are chosen by hash
(``grouped_smallest``) to show what each chain judged side by side.  The driver holds the sums and the sample.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.aggregate import grouped_smallest, grouped_sums
from dataengine.extract.spans import Span, spans_of
from dataengine.filters.code_aware import CODE_AWARE_CHANGE, code_view, prose_view
from dataengine.report.funnel import KEPT, SourceFunnel
from dataengine.schema import stable_hash

EXAMPLES = 2  # pages shown per (source, change)
EXCERPT_CHARS = 600
_KEYS = ["source", "code_blind", "code_aware"]


def _changed(table: pa.Table) -> pa.Table:
    """The rows whose verdict the switch changes, with the change's fields as columns."""
    table = table.filter(pc.is_valid(table[CODE_AWARE_CHANGE]))
    change = table[CODE_AWARE_CHANGE].combine_chunks()
    for name in ("code_blind", "code_aware", "view"):
        table = table.append_column(name, change.field(name))
    return table


def change_rows(table: pa.Table) -> pa.Table:
    """Ray Data batch function: changed pages and their tokens per (source, code-blind, code-aware verdict)."""
    changed = _changed(table)
    tokens = pc.fill_null(changed["n_tokens"], 0)
    return pa.table(
        {"source": changed["source"], "code_blind": changed["code_blind"], "code_aware": changed["code_aware"],
         "docs": pa.repeat(pa.scalar(1, pa.int64()), changed.num_rows), "tokens": pc.cast(tokens, pa.int64())}
    )  # fmt: skip


def window(text: str, spans: list[Span], view: str) -> tuple[str, str]:
    """The same stretch of a page twice: whole, and as the code-aware rules judged it (its prose with the code
    blocks masked, or its code blocks); it starts a little before the first block, where the two differ."""
    start = max(0, spans[0][0] - EXCERPT_CHARS // 3) if spans else 0
    end = start + EXCERPT_CHARS
    inside = [(max(s, start) - start, min(e, end) - start) for s, e in spans if e > start and s < end]
    part = text[start:end]
    return part, (code_view if view == "code" else prose_view)(part, inside)


def example_rows(table: pa.Table) -> pa.Table:
    """Ray Data batch function: each changed page's excerpts (``window``), keyed for a hash-chosen sample."""
    changed = _changed(table)
    pairs = [
        window(text or "", spans, view)
        for text, spans, view in zip(
            changed["text"].to_pylist(), spans_of(changed["code_spans"]), changed["view"].to_pylist(), strict=True
        )
    ]
    hashes = [stable_hash("code_aware", i) >> 1 for i in changed["id"].to_pylist()]
    return pa.table(
        {"source": changed["source"], "code_blind": changed["code_blind"], "code_aware": changed["code_aware"],
         "hash": pa.array(hashes, pa.int64()), "url": changed["url"], "view": changed["view"],
         "whole": pa.array([w for w, _ in pairs], pa.string()), "seen": pa.array([v for _, v in pairs], pa.string())}
    )  # fmt: skip


def code_aware_report(docs: ray.data.Dataset, funnel: dict[str, SourceFunnel]) -> dict[str, Any]:
    """Per source: the changes (pages and tokens from one verdict to the other), each rule's pages and tokens
    rejected with the switch off and on, and example pages per change."""
    sums = grouped_sums(docs, change_rows, _KEYS, ["docs", "tokens"]).to_pylist()
    sample = grouped_smallest(docs, example_rows, _KEYS, "hash", EXAMPLES)
    report: dict[str, Any] = {}
    for row in sums:
        entry = report.setdefault(row["source"], {"changes": [], "rules": {}, "examples": []})
        entry["changes"].append({k: row[k] for k in ("code_blind", "code_aware", "docs", "tokens")})
    for name, entry in report.items():
        entry["rules"] = rule_totals(entry["changes"], funnel[name])
    for row in sorted(sample.to_pylist(), key=lambda r: (r["source"], r["code_blind"], r["code_aware"], r["hash"])):
        report[row["source"]]["examples"].append({k: v for k, v in row.items() if k not in ("source", "hash")})
    return report


def rule_totals(changes: list[dict[str, Any]], funnel: SourceFunnel) -> dict[str, dict[str, int]]:
    """Each changed verdict's pages and tokens with the switch on and off: a rule's rejections (the build's own
    counts are the code-aware ones; each change moves pages from one verdict to the other), or for ``kept`` the
    pages the filters keep, as the difference alone."""
    delta: dict[str, list[int]] = {}
    for change in changes:
        for side, sign in (("code_aware", 1), ("code_blind", -1)):
            docs_tokens = delta.setdefault(change[side], [0, 0])
            docs_tokens[0] += sign * change["docs"]
            docs_tokens[1] += sign * change["tokens"]
    totals: dict[str, dict[str, int]] = {}
    for key, (docs, tokens) in sorted(delta.items()):
        totals[key] = {"docs_change": docs, "tokens_change": tokens}
        if key != KEPT:
            on_docs, on_tokens = funnel.rejected.get(key, 0), funnel.rejected_tokens.get(key, 0)
            totals[key] |= {"docs_off": on_docs - docs, "docs_on": on_docs,
                            "tokens_off": on_tokens - tokens, "tokens_on": on_tokens}  # fmt: skip
    return totals
