"""The funnel of a build from one scan of its documents.

Each batch is summarised into long rows ``(source, kind, key) -> docs, bytes, tokens``: the outcome of every
document (kept or its rejection), kept documents by language and by licence, PII redactions, documents
``langid.route`` moved, the held-out slice, and the mix's use of each training document (decided in the worker
by ``MixPlan.copies``).  ``aggregate.grouped_sums`` adds them up, so the driver receives one row per
(source, kind, key) and never a row per document.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.aggregate import grouped_sums
from dataengine.filters.langid import ROUTED
from dataengine.mix.plan import HeldOut, MixPlan
from dataengine.report.funnel import KEPT, SourceFunnel, batch_counts
from dataengine.shards.write import held_out_mask, kept

_KEYS = ["source", "kind", "key"]
_VALUES = ["docs", "bytes", "tokens"]
_SCHEMA = pa.schema([("source", pa.string()), ("kind", pa.string()), ("key", pa.string()),
                     ("docs", pa.int64()), ("bytes", pa.int64()), ("tokens", pa.int64())])  # fmt: skip


def _long(counts: pa.Table, kind: str) -> pa.Table:
    """``batch_counts`` rows as long rows of one kind."""
    return pa.table(
        {"source": counts["source"], "kind": pa.repeat(kind, counts.num_rows), "key": counts["outcome"],
         "docs": counts["docs"], "bytes": counts["bytes"], "tokens": counts["tokens"]}, schema=_SCHEMA
    )  # fmt: skip


def _pii(table: pa.Table) -> list[dict]:
    counts: dict[tuple[str, str], int] = {}
    for source, meta in zip(table["source"].to_pylist(), table["meta"].to_pylist(), strict=True):
        for kind, n in json.loads(meta or "{}").get("pii", {}).items():
            counts[(source, kind)] = counts.get((source, kind), 0) + n
    return [{"source": s, "kind": "pii", "key": k, "docs": n, "bytes": 0, "tokens": 0} for (s, k), n in counts.items()]


def _routed(table: pa.Table) -> pa.Table:
    """Documents ``langid.route`` moved, under the source they moved to (their detail starts ``to=SOURCE``)."""
    moved = table.filter(pc.equal(pc.fill_null(table["reject"], ""), ROUTED))
    to = pc.struct_field(pc.extract_regex(moved["reject_detail"], r"^to=(?P<to>\S+)"), "to")
    counts = pa.table({"to": to}).group_by("to", use_threads=False).aggregate([("to", "count")])
    zeros = pa.repeat(pa.scalar(0, pa.int64()), counts.num_rows)
    return pa.table({"source": counts["to"], "kind": pa.repeat("routed", counts.num_rows),
                     "key": pa.repeat("", counts.num_rows), "docs": counts["to_count"], "bytes": zeros,
                     "tokens": zeros}, schema=_SCHEMA)  # fmt: skip


def _licenses(table: pa.Table, code_sources: list[str]) -> pa.Table:
    code = table.filter(pc.is_in(table["source"], pa.array(code_sources, pa.string())))
    spdx = [json.loads(m or "{}").get("license") or "NOASSERTION" for m in code["meta"].to_pylist()]
    return _long(batch_counts(code.append_column("license", pa.array(spdx, pa.string())), by="license"), "license")


def _mix_use(train: pa.Table, plan: MixPlan) -> list[dict]:
    """Training documents the mix takes a copy of, and those it leaves out (per source)."""
    rows: dict[tuple[str, str], list[int]] = {}
    columns = (train["source"].to_pylist(), train["id"].to_pylist(), train["n_tokens"].to_pylist(),
               pc.fill_null(train["n_bytes"], 0).to_pylist())  # fmt: skip
    for source, doc_id, n, nbytes in zip(*columns, strict=True):
        used = "used" if plan.copies(source, doc_id, n) else "unused"
        sums = rows.setdefault((source, used), [0, 0, 0])
        sums[0], sums[1], sums[2] = sums[0] + 1, sums[1] + nbytes, sums[2] + n
    return [{"source": s, "kind": "mix", "key": k, "docs": d, "bytes": b, "tokens": t}
            for (s, k), (d, b, t) in rows.items()]  # fmt: skip


def funnel_rows(table: pa.Table, plan: MixPlan, held_out: HeldOut, code_sources: list[str]) -> pa.Table:
    """Ray Data ``map_batches`` function: the long funnel rows of one batch."""
    good = kept(table)
    held = held_out_mask(good, held_out)
    parts = [
        _long(batch_counts(table), "outcome"),
        _long(batch_counts(good, by="lang"), "lang"),
        _licenses(good, code_sources),
        _routed(table),
        _long(batch_counts(good.filter(held)), "held_out"),
        pa.Table.from_pylist(_pii(good) + _mix_use(good.filter(pc.invert(held)), plan), schema=_SCHEMA),
    ]
    return pa.concat_tables([p.cast(_SCHEMA) for p in parts])


def collect_funnel(
    docs: ray.data.Dataset, plan: MixPlan, held_out: HeldOut, sources: list[str], code_sources: list[str]
) -> dict[str, SourceFunnel]:
    """Every source's funnel: documents, bytes and tokens in, rejected per reason, held out, mixed, out."""
    sums = grouped_sums(docs, funnel_rows, _KEYS, _VALUES, {"plan": plan, "held_out": held_out,
                                                            "code_sources": code_sources})  # fmt: skip
    funnel = {name: SourceFunnel() for name in sources}
    for row in sums.to_pylist():
        f, key, n, nbytes, tokens = funnel[row["source"]], row["key"], row["docs"], row["bytes"], row["tokens"]
        match row["kind"]:
            case "outcome":
                f.docs_in, f.bytes_in, f.tokens_in = f.docs_in + n, f.bytes_in + nbytes, f.tokens_in + tokens
                if key != KEPT:
                    f.reject(key, n, tokens, nbytes)
            case "lang":
                f.languages[key] = {"docs": n, "bytes": nbytes, "tokens": tokens}
            case "license":
                f.licenses[key] = {"docs": n, "bytes": nbytes, "tokens": tokens}
            case "routed":
                f.routed_in += n
            case "pii":
                f.pii_redacted[key] = n
            case "held_out":
                f.held_out_docs, f.held_out_tokens = f.held_out_docs + n, f.held_out_tokens + tokens
            case "mix" if key == "used":
                f.docs_out, f.unique_tokens_out = n, tokens
            case "mix":
                f.reject("mix:over_budget" if row["source"] in plan.sources else "mix:not_in_mix", n, tokens, nbytes)
    for name, src_plan in plan.sources.items():
        funnel[name].tokens_out = src_plan.target_tokens
        funnel[name].epochs = round(src_plan.epochs, 4)
    return funnel
