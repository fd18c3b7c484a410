"""Funnel accounting: documents, bytes and tokens per source, in, out and dropped per stage and reason.

Counts are aggregated per Arrow batch inside Ray Data (so no node holds the documents) and summed by a tree
of Ray tasks (``report.collect``).  ``check_balance`` enforces the build's promise: for every source, documents
in = documents out (training shards) + held out + every rejection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

KEPT = "kept"


def batch_counts(table: pa.Table, by: str = "reject") -> pa.Table:
    """Ray Data ``map_batches`` function: ``(source, outcome) -> docs, bytes, tokens`` for one batch.

    The outcome is the rejection (``kept`` for none), or with ``by="lang"`` the document's language.
    """
    outcome = pc.fill_null(table[by], KEPT if by == "reject" else "unknown")
    nbytes = pc.fill_null(table["n_bytes"], 0)
    tokens = pc.fill_null(table["n_tokens"], 0) if "n_tokens" in table.column_names else pa.repeat(0, table.num_rows)
    small = pa.table({"source": table["source"], "outcome": outcome, "bytes": nbytes, "tokens": tokens})
    grouped = small.group_by(["source", "outcome"], use_threads=False).aggregate(
        [([], "count_all"), ("bytes", "sum"), ("tokens", "sum")]
    )
    names = {"count_all": "docs", "bytes_sum": "bytes", "tokens_sum": "tokens"}
    grouped = grouped.rename_columns([names.get(n, n) for n in grouped.column_names])
    return grouped.select(["source", "outcome", "docs", "bytes", "tokens"])


@dataclass
class SourceFunnel:
    docs_in: int = 0
    bytes_in: int = 0
    tokens_in: int = 0
    docs_out: int = 0
    unique_tokens_out: int = 0
    tokens_out: int = 0
    epochs: float = 0.0
    held_out_docs: int = 0
    held_out_tokens: int = 0
    routed_in: int = 0  # documents ``langid.route`` moved here from other sources (counted in ``docs_in``)
    rejected: dict[str, int] = field(default_factory=dict)
    rejected_tokens: dict[str, int] = field(default_factory=dict)
    rejected_bytes: dict[str, int] = field(default_factory=dict)
    languages: dict[str, dict[str, int]] = field(default_factory=dict)  # kept documents per (programming) language
    licenses: dict[str, dict[str, int]] = field(default_factory=dict)  # code: kept documents per SPDX licence
    lines_removed: dict[str, int] = field(default_factory=dict)  # line dedup: boilerplate lines and bytes
    pii_redacted: dict[str, int] = field(default_factory=dict)  # kept documents' redactions by kind

    def reject(self, key: str, docs: int, tokens: int, nbytes: int) -> None:
        self.rejected[key] = self.rejected.get(key, 0) + docs
        self.rejected_tokens[key] = self.rejected_tokens.get(key, 0) + tokens
        self.rejected_bytes[key] = self.rejected_bytes.get(key, 0) + nbytes

    def balanced(self) -> bool:
        return self.docs_in == self.docs_out + self.held_out_docs + sum(self.rejected.values())


class FunnelImbalance(RuntimeError):
    """A source's documents do not add up: a bug, never an input problem."""


def check_balance(funnel: dict[str, SourceFunnel]) -> None:
    broken = [
        f"{name}: in {f.docs_in} != out {f.docs_out} + held out {f.held_out_docs} + rejected {sum(f.rejected.values())}"
        for name, f in funnel.items()
        if not f.balanced()
    ]
    if broken:
        raise FunnelImbalance("documents lost: " + "; ".join(broken))
