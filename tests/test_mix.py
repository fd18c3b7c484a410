"""Mix planning: exact token shares, capped repetition, hash order, a stable held-out slice.

The plan is decided per document from per-source totals (``MixPlan.copies``); these tests check it against a
plain in-memory reference that sorts each source's documents, on a real Ray Data dataset.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import ray.data

from dataengine.mix.cut import find_cuts
from dataengine.mix.plan import (
    HeldOut,
    MixPlan,
    auto_total,
    held_out_hash,
    mix_hash,
    plan_held_out,
    plan_mix,
)
from dataengine.schema import stable_hash

DOCS = {
    "code": {f"code/{i}": 100 + (i * 37) % 500 for i in range(400)},
    "web_en": {f"en/{i}": 50 + (i * 13) % 300 for i in range(300)},
    "web_zh": {f"zh/{i}": 80 + (i * 7) % 200 for i in range(100)},
}
SHARES = {"code": 0.3, "web_en": 0.49, "web_zh": 0.21}


def dataset(docs: dict[str, dict[str, int]], blocks: int = 4) -> ray.data.Dataset:
    rows = [{"source": s, "id": i, "n_tokens": n} for s, d in docs.items() for i, n in d.items()]
    table = pa.Table.from_pylist(rows, schema=pa.schema([("source", pa.string()), ("id", pa.string()),
                                                          ("n_tokens", pa.int64())]))  # fmt: skip
    return ray.data.from_arrow(table).repartition(blocks).materialize()


def all_copies(plan: MixPlan, docs: dict[str, dict[str, int]]) -> dict[str, dict[str, list[int]]]:
    out: dict[str, dict[str, list[int]]] = {}
    for source, d in docs.items():
        taken = {i: plan.copies(source, i, n) for i, n in d.items()}
        out[source] = {i: c for i, c in taken.items() if c}
    return out


def reference_copies(docs: dict[str, int], target: int, seed: int, source: str) -> dict[str, list[int]]:
    """The plan as one process would make it: whole passes, then documents in hash order until the target."""
    copies: dict[str, list[int]] = {}
    remaining, epoch = target, 0
    while remaining > 0:
        for doc_id in sorted(docs, key=lambda i: mix_hash(seed, source, epoch, i)):
            n = docs[doc_id]
            if n == 0:
                continue
            take = min(n, remaining)
            copies.setdefault(doc_id, []).append(take)
            remaining -= take
            if remaining == 0:
                break
        epoch += 1
    return copies


@pytest.mark.parametrize("total", [50_000, 100_000, 237_001])
def test_copies_equal_the_in_memory_reference(ray_local, total: int) -> None:
    plan = plan_mix(dataset(DOCS), SHARES, total, max_epochs=4, seed=3)
    got = all_copies(plan, DOCS)
    for name, share in SHARES.items():
        assert got[name] == reference_copies(DOCS[name], round(share * total), 3, name)


def test_shares_are_met_to_the_token_whatever_the_blocks(ray_local) -> None:
    plans = [plan_mix(dataset(DOCS, blocks), SHARES, 100_000, max_epochs=4, seed=0) for blocks in (1, 7)]
    assert plans[0] == plans[1]
    copies = all_copies(plans[0], DOCS)
    for name in SHARES:
        assert sum(map(sum, copies[name].values())) == round(SHARES[name] * 100_000)
    assert plans[0].realised_shares() == pytest.approx(SHARES, abs=1e-4)


def test_auto_total_is_the_largest_the_cap_allows(ray_local) -> None:
    available = {s: sum(d.values()) for s, d in DOCS.items()}
    total = auto_total(available, SHARES, 2)
    plan = plan_mix(dataset(DOCS), SHARES, "auto", max_epochs=2, seed=0)
    assert plan.total_tokens == total
    assert max(p.epochs for p in plan.sources.values()) == pytest.approx(2, rel=1e-3)
    assert all(p.epochs <= 2 + 1e-9 for p in plan.sources.values())


def test_repetition_beyond_the_cap_is_refused(ray_local) -> None:
    with pytest.raises(ValueError, match="code.*4 epochs allowed"):
        plan_mix(dataset(DOCS), SHARES, 10_000_000, max_epochs=4, seed=0)


def test_subsampling_follows_the_seed(ray_local) -> None:
    a = all_copies(plan_mix(dataset(DOCS), SHARES, 50_000, max_epochs=4, seed=1), DOCS)
    c = all_copies(plan_mix(dataset(DOCS), SHARES, 50_000, max_epochs=4, seed=2), DOCS)
    assert a["code"].keys() != c["code"].keys()


def test_zero_share_and_missing_sources(ray_local) -> None:
    plan = plan_mix(dataset(DOCS), {"code": 0.0, "web_en": 0.7, "web_zh": 0.3}, 10_000, 4, 0)
    assert "code" not in plan.sources and not all_copies(plan, DOCS)["code"]
    with pytest.raises(ValueError, match="no document of it survived"):
        plan_mix(dataset({k: v for k, v in DOCS.items() if k != "web_zh"}), SHARES, 10_000, 4, 0)


def test_cuts_isolate_the_crossing_document_in_a_large_group(ray_local) -> None:
    """Many documents per bucket of the first round: the cut narrows over several rounds to one document."""
    n = 40_000
    weights = [(i * 7919) % 13 for i in range(n)]  # zero weights included
    hashes = [stable_hash("cut-test", i) for i in range(n)]
    table = pa.table({"group": ["g"] * n, "hash": pa.array(hashes, pa.uint64()), "weight": weights})
    rows = ray.data.from_arrow(table).repartition(5).materialize()
    target = sum(weights) // 3
    cut = find_cuts(rows, {"g": target, "none": 0})["g"]
    ordered = sorted(zip(hashes, weights, strict=True))
    running = 0
    for h, w in ordered:
        if running + w >= target:
            assert cut.crossing(h) and cut.before == running
            break
        assert cut.below(h)
        running += w
    assert sum(cut.crossing(h) for h in hashes) == 1


def test_held_out_slice_is_stable_and_about_the_right_size() -> None:
    ids = [f"web_en/{i:06d}" for i in range(20_000)]
    held = [i for i in ids if HeldOut(0.05).contains("web_en", i)]
    assert 800 < len(held) < 1200
    assert held == [i for i in ids if HeldOut(0.05).contains("web_en", i)]


def reference_held_out(docs: dict[str, int], fraction: float, tokens: int, min_docs: int) -> set[str]:
    """The held-out slice as one process would choose it: documents in held-out hash order until both the token
    budget and the document floor are reached (at most half the source's tokens and documents), plus the
    fraction's."""
    order = sorted(docs, key=held_out_hash)
    token_target = min(tokens, sum(docs.values()) // 2)
    doc_target = min(min_docs, len(docs) // 2)
    held, running = set(), 0
    for doc_id in order:
        if running >= token_target and len(held) >= doc_target:
            break
        held.add(doc_id)
        running += docs[doc_id]
    return held | {i for i in docs if held_out_hash(i) / 2.0**64 < fraction}


@pytest.mark.parametrize(("tokens", "min_docs"), [(5_000, 10), (1_000, 60), (10**9, 100)])
def test_held_out_tokens_holds_out_the_budget_and_the_floor_as_the_in_memory_reference(
    ray_local, tokens: int, min_docs: int
) -> None:
    """By tokens: at least the budget and at least the floor of documents per source, found by histogram rounds
    (no document on the driver), equal to the reference, whatever the blocks; never more than half a source."""
    slices = [plan_held_out(dataset(DOCS, blocks), 0.01, tokens, min_docs) for blocks in (1, 5)]
    assert slices[0] == slices[1]
    held_out = slices[0]
    for source, docs in DOCS.items():
        held = {i for i in docs if held_out.contains(source, i)}
        assert held == reference_held_out(docs, 0.01, tokens, min_docs)
        size = sum(docs[i] for i in held)
        assert size >= min(tokens, sum(docs.values()) // 2) and len(held) >= min(min_docs, len(docs) // 2)
        assert size <= sum(docs.values()) // 2 + max(docs.values()) or len(held) <= len(docs) // 2 + 1
    assert plan_held_out(dataset(DOCS), 0.05, None, 100) == HeldOut(0.05)  # no budget: the fraction alone, as before
