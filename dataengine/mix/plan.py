"""Token-share mixing with capped repetition.

Each source gets ``share * total`` tokens.  A source with fewer tokens than that is repeated (whole passes over
its documents, then a partial pass) up to ``max_epochs``; a source with more is subsampled.  Documents of a pass
are taken in the order of a seeded hash of their id, never in arrival order, and the last document of a partial
pass is cut so every source hits its target to the token.  ``total_tokens: auto`` is the largest total that
every source can fill within the repetition cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dataengine.schema import stable_hash, unit_fraction


@dataclass
class SourcePlan:
    share: float
    available_tokens: int
    available_docs: int
    target_tokens: int
    copies: dict[str, list[int]] = field(default_factory=dict)  # id -> tokens taken per copy (epoch order)

    @property
    def realised_tokens(self) -> int:
        return sum(sum(c) for c in self.copies.values())

    @property
    def epochs(self) -> float:
        return self.realised_tokens / self.available_tokens if self.available_tokens else 0.0


@dataclass
class MixPlan:
    total_tokens: int
    sources: dict[str, SourcePlan]

    def realised_shares(self) -> dict[str, float]:
        total = sum(p.realised_tokens for p in self.sources.values()) or 1
        return {name: p.realised_tokens / total for name, p in self.sources.items()}

    def unused(self, docs: dict[str, dict[str, int]]) -> dict[str, list[str]]:
        """Per source, the ids of documents the mix took no copy of."""
        taken = {name: plan.copies for name, plan in self.sources.items()}
        return {name: [i for i in ids if i not in taken.get(name, {})] for name, ids in docs.items()}


def auto_total(available: dict[str, int], shares: dict[str, float], max_epochs: float) -> int:
    """The largest total every source with a share can fill within ``max_epochs`` passes."""
    limits = [available[s] * max_epochs / share for s, share in shares.items() if share > 0]
    return int(math.floor(min(limits)))


def plan_mix(
    docs: dict[str, dict[str, int]],
    shares: dict[str, float],
    total_tokens: int | str,
    max_epochs: float,
    seed: int,
) -> MixPlan:
    """Choose the copies of every document.  ``docs`` is ``{source: {id: n_tokens}}`` of the training documents."""
    unknown = sorted(s for s, share in shares.items() if share > 0 and not docs.get(s))
    if unknown:
        raise ValueError(f"the mix gives a share to {', '.join(unknown)}, but no document of it survived filtering")
    available = {s: sum(docs[s].values()) for s in shares if shares[s] > 0}
    total = auto_total(available, shares, max_epochs) if total_tokens == "auto" else int(total_tokens)
    sources: dict[str, SourcePlan] = {}
    for name, share in sorted(shares.items()):
        if share <= 0:
            continue
        target = round(share * total)
        if target > available[name] * max_epochs:
            raise ValueError(
                f"source {name!r}: the mix needs {target:,} tokens but only {available[name]:,} are available "
                f"({max_epochs} epochs allowed); lower total_tokens or raise max_epochs"
            )
        plan = SourcePlan(share, available[name], len(docs[name]), target)
        _fill(plan, docs[name], seed, name)
        sources[name] = plan
    return MixPlan(total, sources)


def _fill(plan: SourcePlan, docs: dict[str, int], seed: int, source: str) -> None:
    remaining, epoch = plan.target_tokens, 0
    while remaining > 0:
        for doc_id in sorted(docs, key=lambda i: stable_hash(seed, "mix", source, epoch, i)):
            n = docs[doc_id]
            if n == 0:
                continue
            take = min(n, remaining)
            plan.copies.setdefault(doc_id, []).append(take)
            remaining -= take
            if remaining == 0:
                break
        epoch += 1


def order_key(seed: int, doc_id: str, copy: int) -> int:
    """Position of a copy in the shards: a seeded hash, so documents and repeats are spread evenly."""
    return stable_hash(seed, "order", doc_id, copy) >> 1  # fits a signed int64 column


def is_held_out(doc_id: str, fraction: float) -> bool:
    """The held-out evaluation slice: by a hash of the id alone, so it is the same for every mix and seed."""
    return unit_fraction("held_out", doc_id) < fraction
