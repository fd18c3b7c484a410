"""Sizing the ladder's rungs so that repetition is held equal: every text source is seen the same number of epochs
in every rung's training, whatever its code share.

Why: with one shard budget for every rung, the code-free rung repeats its text more than the 50%-code rung (the
mix fills each source's share by repeating it), and training loops the shards, so a ladder compared repetition as
much as code (adding code under heavy repetition is known to help: Muennighoff et al. 2023).

How: every rung's shards hold each text source at most once (a hash-ordered subsample of its documents, taken by
the build's mix at ``share * shard tokens``), and every rung's shards hold ``S * scale`` tokens, where ``scale`` is
the rung's training tokens over ``--tokens`` (1 for the ladder, ``1 / (1 - code share)`` for the controls trained on
more tokens).  Training ``T * scale`` tokens then passes over the shards ``T / S`` times, so each text source is
seen exactly ``T / S`` epochs in every rung: a rung with less text takes a smaller unique sample of it, not more
passes.  ``S`` is the largest budget with which every text source of every rung fits once (and code within the
mix's ``max_epochs``); code's epochs follow from its share and are reported, not equalised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CODE = "code"
EQUAL_WITHIN = 0.10  # text epochs of one source may differ across rungs by this fraction at most


@dataclass(frozen=True)
class RungSize:
    """What the planner needs of a rung: its token shares and its training tokens as a multiple of ``--tokens``."""

    name: str
    shares: Mapping[str, float]
    scale: float = 1.0


@dataclass(frozen=True)
class RepetitionPlan:
    shard_tokens: dict[str, int]  # per rung: the total its build's mix takes
    epochs: dict[str, dict[str, float]]  # per rung and source: epochs seen in training
    text_epochs: float  # the largest epochs of any text source in any rung


def expected_epochs(train_tokens: float, shard_tokens: float, share: float, available: int) -> float:
    """Epochs of a source seen in training: its training tokens over the unique tokens the shards hold of it."""
    unique = min(available, share * shard_tokens)
    return train_tokens * share / unique if unique > 0 else 0.0


def plan_repetition(
    available: Mapping[str, int],
    rungs: Sequence[RungSize],
    train_tokens: int,
    max_text_epochs: float,
    max_code_epochs: float,
    shard_total: int | None = None,
) -> RepetitionPlan:
    """Shard budgets and training epochs per rung and source; refuses (``ValueError``) a ladder whose text would be
    seen more than ``max_text_epochs`` times, or unequally across rungs (a ``shard_total`` forced too large)."""
    used = {s for r in rungs for s, share in r.shares.items() if share > 0}
    missing = sorted(s for s in used if not available.get(s))
    if missing:
        raise ValueError(f"the reference build has no tokens of {', '.join(missing)}: give it a share in --reference")
    limits = {
        (r.name, s): available[s] * (max_code_epochs if s == CODE else 1.0) / (r.scale * share)
        for r in rungs
        for s, share in r.shares.items()
        if share > 0
    }
    largest = math.floor(min(limits.values()))
    total = shard_total or largest
    epochs = {
        r.name: {
            s: expected_epochs(train_tokens * r.scale, total * r.scale, share, available[s])
            for s, share in sorted(r.shares.items())
            if share > 0
        }
        for r in rungs
    }
    text = {s for s in used if s != CODE}
    for s in sorted(text):
        seen = [e[s] for e in epochs.values() if s in e]
        if max(seen) > (1 + EQUAL_WITHIN) * min(seen):
            raise ValueError(
                f"{s} would be seen {min(seen):.2f} to {max(seen):.2f} epochs across the rungs (more than "
                f"{EQUAL_WITHIN:.0%} apart): lower --total-tokens to {largest:,} or leave it out"
            )
    text_epochs = max((e[s] for e in epochs.values() for s in e if s in text), default=0.0)
    if text_epochs > max_text_epochs:
        needed = {s: math.ceil(max(train_tokens * r.scale * r.shares.get(s, 0.0) for r in rungs) / max_text_epochs)
                  for s in sorted(text)}  # fmt: skip
        have = sum(available[s] for s in text)
        per_source = ", ".join(f"{s} {n:,} (has {available[s]:,})" for s, n in needed.items())
        rung, source = min(limits, key=lambda k: limits[k])
        binds = f"; {rung}'s code binds the shard budget (max_epochs {max_code_epochs:g})" if source == CODE else ""
        raise ValueError(
            f"this ladder would see its text {text_epochs:.1f} epochs (cap {max_text_epochs:g}): "
            f"{train_tokens:,} training tokens need {sum(needed.values()):,} unique text tokens ({per_source}), "
            f"the sources have {have:,}{binds}; lower --tokens, give more text, or raise --max-text-epochs"
        )
    shard_tokens = {r.name: round(total * r.scale) for r in rungs}
    return RepetitionPlan(shard_tokens, epochs, text_epochs)
