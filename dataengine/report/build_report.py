"""What a finished build writes beside its shards: the report (funnel, shares, timings, examples), the rejects
sample and the console summary.  Every input here is an aggregate or a bounded, hash-chosen sample."""

from __future__ import annotations

import json
import resource
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray.data
from rich.console import Console
from rich.table import Table

from dataengine import storage
from dataengine.aggregate import grouped_smallest
from dataengine.mix.plan import MixPlan
from dataengine.report.funnel import SourceFunnel
from dataengine.schema import stable_hash

REPORT_EXAMPLES = 3  # rejected documents per (source, reason), kept per source, shown in report.html
REPORT_EXAMPLE_CHARS = 400
SAMPLE_CHARS = 2000


def mix_section(plan: MixPlan, used_docs: dict[str, int]) -> dict[str, Any]:
    realised = plan.realised_shares()
    return {
        "total_tokens": plan.total_tokens,
        "sources": {
            name: {
                "target_share": p.share,
                "realised_share": round(realised[name], 6),
                "target_tokens": p.target_tokens,
                "realised_tokens": p.target_tokens,
                "available_tokens": p.available_tokens,
                "available_docs": p.available_docs,
                "docs": used_docs.get(name, 0),
                "epochs": round(p.epochs, 4),
            }
            for name, p in plan.sources.items()
        },
    }


def _sample_keys(table: pa.Table) -> pa.Table:
    hashes = [stable_hash("sample", i) >> 1 for i in table["id"].to_pylist()]
    return pa.table({"source": table["source"], "reject": pc.fill_null(table["reject"], ""), "id": table["id"],
                     "hash": pa.array(hashes, pa.int64())})  # fmt: skip


def _sample_rows(table: pa.Table, ids: set[str]) -> pa.Table:
    chosen = table.filter(pa.array([i in ids for i in table["id"].to_pylist()], pa.bool_()))
    text = pc.utf8_slice_codeunits(pc.fill_null(chosen["text"], ""), 0, SAMPLE_CHARS)
    return pa.table({"id": chosen["id"], "source": chosen["source"], "reject": chosen["reject"],
                     "reject_detail": chosen["reject_detail"], "url": chosen["url"], "text": text})  # fmt: skip


def write_examples(docs: ray.data.Dataset, out: storage.Target, per_reason: int) -> dict[str, Any]:
    """A few rejected documents per (source, reason) and a few kept ones per source, chosen by hash so the
    sample is stable: ``rejects/sample.jsonl`` and ``rejects/kept.jsonl`` in full (2,000 characters), and
    short excerpts for the report, which shows each rule's rejections beside documents it kept."""
    keys = grouped_smallest(docs, _sample_keys, ["source", "reject"], "hash", per_reason)
    chosen = set(keys["id"].to_pylist()) if keys.num_rows else set()  # at most per_reason per (source, reason)
    sample = docs.map_batches(_sample_rows, fn_kwargs={"ids": chosen}, batch_format="pyarrow").take_all()
    sample.sort(key=lambda r: (r["source"], r["reject"] or "", stable_hash("sample", r["id"])))
    _write_jsonl(storage.join(out, "rejects", "sample.jsonl"), [r for r in sample if r["reject"] is not None])
    _write_jsonl(storage.join(out, "rejects", "kept.jsonl"), [r for r in sample if r["reject"] is None])
    examples: dict[str, Any] = {}
    for row in sample:
        entry = examples.setdefault(row["source"], {"kept": [], "rejected": {}})
        side = entry["kept"] if row["reject"] is None else entry["rejected"].setdefault(row["reject"], [])
        if len(side) < REPORT_EXAMPLES:
            side.append({"id": row["id"], "url": row["url"], "detail": row["reject_detail"],
                         "text": row["text"][:REPORT_EXAMPLE_CHARS]})  # fmt: skip
    return examples


def _write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    storage.write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def build_report(
    mix_name: str, seed: int, stages: list[str], funnel: dict[str, SourceFunnel], plan: MixPlan, timings: dict,
    wall: float, workers: int,
) -> dict[str, Any]:  # fmt: skip
    sources = {name: vars(f) for name, f in funnel.items()}
    totals = {
        key: sum(f[key] for f in sources.values())
        for key in ("docs_in", "docs_out", "tokens_in", "tokens_out", "held_out_docs")
    }
    realised = plan.realised_shares()
    return {
        "mix": mix_name,
        "seed": seed,
        "stages": stages,
        "sources": sources,
        "totals": totals,
        "mix_shares": {n: {"target": p.share, "realised": round(realised[n], 6)} for n, p in plan.sources.items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "workers": workers,
    }


def print_summary(console: Console, report: dict[str, Any], out: storage.Target) -> None:
    table = Table(title=f"build {report['mix']} → {out}", show_lines=False)
    for col in ("source", "docs in", "rejected", "held out", "docs out", "tokens out", "epochs", "share"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, f in report["sources"].items():
        share = report["mix_shares"].get(name, {})
        share_txt = f"{share['realised']:.1%} (target {share['target']:.0%})" if share else "-"
        table.add_row(name, f"{f['docs_in']:,}", f"{sum(f['rejected'].values()):,}", f"{f['held_out_docs']:,}",
                      f"{f['docs_out']:,}", f"{f['tokens_out']:,}", f"{f['epochs']:.2f}", share_txt)  # fmt: skip
    console.print(table)
    for name, f in report["sources"].items():
        top = sorted(f["rejected"].items(), key=lambda kv: -kv[1])[:4]
        if top:
            console.print(f"  {name} top rejections: " + ", ".join(f"{k} {v:,}" for k, v in top))
    console.print(f"wrote shards, manifest.json, report.json/html, funnel.png in {report['wall_s']:.0f} s")
