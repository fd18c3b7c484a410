"""Token-share mixing with capped repetition, decided per document in the workers.

Each source gets ``share * total`` tokens.  A source with fewer tokens than that is repeated (whole passes over
its documents, then a partial pass) up to ``max_epochs``; a source with more is subsampled.  The partial pass
takes documents in the order of a seeded hash of their id, never in arrival order, and the last document it
takes is cut so every source hits its target to the token.  ``total_tokens: auto`` is the largest total that
every source can fill within the repetition cap.

The plan holds a few numbers per source (its totals, its whole passes and the cut of its partial pass, found by
``cut.find_cuts`` without gathering the documents); ``copies`` turns them and a document's id and size into the
tokens taken of each of its copies, so the workers decide every document and the driver holds none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from dataengine.aggregate import grouped_sums
from dataengine.mix.cut import Cut, find_cuts
from dataengine.schema import stable_hash


@dataclass(frozen=True)
class SourcePlan:
    share: float
    available_tokens: int
    available_docs: int
    target_tokens: int
    passes: int  # whole passes over every document
    cut: Cut  # the partial pass (epoch ``passes``) in mix-hash order

    @property
    def remainder(self) -> int:
        return self.target_tokens - self.passes * self.available_tokens

    @property
    def epochs(self) -> float:
        return self.target_tokens / self.available_tokens if self.available_tokens else 0.0


@dataclass(frozen=True)
class MixPlan:
    total_tokens: int
    seed: int
    sources: dict[str, SourcePlan]

    def realised_shares(self) -> dict[str, float]:
        total = sum(p.target_tokens for p in self.sources.values()) or 1
        return {name: p.target_tokens / total for name, p in self.sources.items()}

    def copies(self, source: str, doc_id: str, n_tokens: int) -> list[int]:
        """Tokens taken of each copy of a training document, in epoch order (empty: the mix leaves it out)."""
        plan = self.sources.get(source)
        if plan is None or n_tokens == 0:
            return []
        taken = [n_tokens] * plan.passes
        h = mix_hash(self.seed, source, plan.passes, doc_id)
        if plan.cut.below(h):
            taken.append(n_tokens)
        elif plan.cut.crossing(h):
            taken.append(plan.remainder - plan.cut.before)
        return taken


def mix_hash(seed: int, source: str, epoch: int, doc_id: str) -> int:
    """A document's place in a pass of its source."""
    return stable_hash(seed, "mix", source, epoch, doc_id)


def auto_total(available: dict[str, int], shares: dict[str, float], max_epochs: float) -> int:
    """The largest total every source with a share can fill within ``max_epochs`` passes."""
    limits = [available[s] * max_epochs / share for s, share in shares.items() if share > 0]
    return int(math.floor(min(limits)))


def plan_mix(
    docs: ray.data.Dataset, shares: dict[str, float], total_tokens: int | str, max_epochs: float, seed: int
) -> MixPlan:
    """The plan for ``docs``, the training documents (columns ``source``, ``id``, ``n_tokens``)."""
    sums = grouped_sums(docs, _size_rows, ["source"], ["n_tokens", "docs"])
    totals = {s: (int(n), int(d)) for s, n, d in zip(*sums.to_pydict().values(), strict=True)}
    unknown = sorted(s for s, share in shares.items() if share > 0 and not totals.get(s, (0, 0))[0])
    if unknown:
        raise ValueError(f"the mix gives a share to {', '.join(unknown)}, but no document of it survived filtering")
    available = {s: totals[s][0] for s in shares if shares[s] > 0}
    total = auto_total(available, shares, max_epochs) if total_tokens == "auto" else int(total_tokens)
    targets: dict[str, tuple[float, int]] = {}
    for name, share in sorted(shares.items()):
        if share <= 0:
            continue
        target = round(share * total)
        if target > available[name] * max_epochs:
            raise ValueError(
                f"source {name!r}: the mix needs {target:,} tokens but only {available[name]:,} are available "
                f"({max_epochs} epochs allowed); lower total_tokens or raise max_epochs"
            )
        targets[name] = (share, target)
    passes = {name: target // available[name] for name, (_, target) in targets.items()}
    remainders = {name: target - passes[name] * available[name] for name, (_, target) in targets.items()}
    rows = docs.map_batches(_cut_rows, fn_kwargs={"seed": seed, "passes": passes}, batch_format="pyarrow")
    cuts = find_cuts(rows.materialize(), remainders)
    sources = {
        name: SourcePlan(share, available[name], totals[name][1], target, passes[name], cuts[name])
        for name, (share, target) in targets.items()
    }
    return MixPlan(total, seed, sources)


def _size_rows(table: pa.Table) -> pa.Table:
    return pa.table({"source": table["source"], "n_tokens": table["n_tokens"].cast(pa.int64()),
                     "docs": pa.repeat(pa.scalar(1, pa.int64()), table.num_rows)})  # fmt: skip


def _cut_rows(table: pa.Table, seed: int, passes: dict[str, int]) -> pa.Table:
    """Ray Data ``map_batches`` function: the partial pass's hash and size of each document of a mixed source."""
    table = table.filter(pc.and_(pc.is_in(table["source"], pa.array(list(passes), pa.string())),
                                 pc.greater(table["n_tokens"], 0)))  # fmt: skip
    sources, ids = table["source"].to_pylist(), table["id"].to_pylist()
    hashes = [mix_hash(seed, s, passes[s], i) for s, i in zip(sources, ids, strict=True)]
    return pa.table(
        {"group": table["source"], "hash": pa.array(hashes, pa.uint64()), "weight": table["n_tokens"].cast(pa.int64())}
    )


def order_key(seed: int, doc_id: str, copy: int) -> int:
    """Position of a copy in the shards: a seeded hash, so documents and repeats are spread evenly."""
    return stable_hash(seed, "order", doc_id, copy) >> 1  # fits a signed int64 column


HELD_OUT_MAX_SHARE = 0.5  # a token budget or document floor never holds out more than this of a source: the rest trains


@dataclass(frozen=True)
class HeldOut:
    """The held-out slice: per source, a prefix of its documents in the order of ``held_out_hash`` (the id alone,
    so the slice is the same for every mix and seed): those below the source's ``bounds`` (a token budget and a
    document floor, from ``plan_held_out``) and, as before, those whose hash falls in the first ``fraction``."""

    fraction: float
    bounds: dict[str, int] = field(default_factory=dict)

    def contains(self, source: str, doc_id: str) -> bool:
        h = held_out_hash(doc_id)
        return h < self.bounds.get(source, 0) or h / 2.0**64 < self.fraction


def held_out_hash(doc_id: str) -> int:
    """A document's place in its source's held-out order: of the id alone, the same for every mix and seed."""
    return stable_hash("held_out", doc_id)


def plan_held_out(docs: ray.data.Dataset, fraction: float, tokens: int | None, min_docs: int) -> HeldOut:
    """The slice of ``docs`` (kept documents: ``source``, ``id``, ``n_tokens``) that holds, per source, the first
    documents in held-out hash order until at least ``tokens`` tokens and ``min_docs`` documents are in it (never
    more than ``HELD_OUT_MAX_SHARE`` of the source's tokens for the budget, nor of its documents for the floor).
    Both cuts come from ``find_cuts``'s histogram rounds: the driver holds a few numbers per source, never a
    document.  ``tokens`` None: the fraction alone, as before."""
    if tokens is None:
        return HeldOut(fraction)
    sums = grouped_sums(docs, _size_rows, ["source"], ["n_tokens", "docs"])
    targets = {}
    for source, n_tokens, n_docs in zip(*sums.to_pydict().values(), strict=True):
        targets[f"tokens:{source}"] = min(tokens, int(n_tokens * HELD_OUT_MAX_SHARE))
        targets[f"docs:{source}"] = min(min_docs, int(n_docs * HELD_OUT_MAX_SHARE))
    cuts = find_cuts(docs.map_batches(_held_out_rows, batch_format="pyarrow").materialize(), targets)
    bounds: dict[str, int] = {}
    for group, cut in sorted(cuts.items()):
        source = group.partition(":")[2]
        bounds[source] = max(bounds.get(source, 0), cut.hi)  # the crossing document is in: the target is reached
    return HeldOut(fraction, bounds)


def _held_out_rows(table: pa.Table) -> pa.Table:
    """Ray Data ``map_batches`` function: each document twice, weighted by its tokens and as one document."""
    hashes = pa.array([held_out_hash(i) for i in table["id"].to_pylist()], pa.uint64())
    tokens = table["n_tokens"].cast(pa.int64())
    ones = pa.repeat(pa.scalar(1, pa.int64()), table.num_rows)
    return pa.concat_tables(
        [pa.table({"group": pc.binary_join_element_wise(kind, table["source"], ""), "hash": hashes, "weight": weight})
         for kind, weight in (("tokens:", tokens), ("docs:", ones))]
    )  # fmt: skip
