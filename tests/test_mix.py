"""Mix planning: exact token shares, capped repetition, hash order, a stable held-out slice."""

from __future__ import annotations

import pytest

from dataengine.mix.plan import auto_total, is_held_out, plan_mix

DOCS = {
    "code": {f"code/{i}": 100 + (i * 37) % 500 for i in range(400)},
    "web_en": {f"en/{i}": 50 + (i * 13) % 300 for i in range(300)},
    "web_zh": {f"zh/{i}": 80 + (i * 7) % 200 for i in range(100)},
}
SHARES = {"code": 0.3, "web_en": 0.49, "web_zh": 0.21}


def test_shares_are_met_to_the_token() -> None:
    plan = plan_mix(DOCS, SHARES, 100_000, max_epochs=4, seed=0)
    for name, p in plan.sources.items():
        assert p.realised_tokens == round(SHARES[name] * 100_000)
    assert plan.realised_shares() == pytest.approx(SHARES, abs=1e-4)


def test_auto_total_is_the_largest_the_cap_allows() -> None:
    available = {s: sum(d.values()) for s, d in DOCS.items()}
    total = auto_total(available, SHARES, 2)
    plan = plan_mix(DOCS, SHARES, "auto", max_epochs=2, seed=0)
    assert plan.total_tokens == total
    assert max(p.epochs for p in plan.sources.values()) == pytest.approx(2, rel=1e-3)
    assert all(p.epochs <= 2 + 1e-9 for p in plan.sources.values())


def test_repetition_beyond_the_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="code.*4 epochs allowed"):
        plan_mix(DOCS, SHARES, 10_000_000, max_epochs=4, seed=0)


def test_subsampling_follows_the_seed_and_not_the_input_order() -> None:
    a = plan_mix(DOCS, SHARES, 50_000, max_epochs=4, seed=1)
    shuffled = {s: dict(reversed(list(d.items()))) for s, d in DOCS.items()}
    b = plan_mix(shuffled, SHARES, 50_000, max_epochs=4, seed=1)
    c = plan_mix(DOCS, SHARES, 50_000, max_epochs=4, seed=2)
    assert a.sources["code"].copies == b.sources["code"].copies
    assert a.sources["code"].copies.keys() != c.sources["code"].copies.keys()
    assert set(a.unused(DOCS)["code"]) == set(DOCS["code"]) - set(a.sources["code"].copies)


def test_zero_share_and_missing_sources() -> None:
    plan = plan_mix(DOCS, {"code": 0.0, "web_en": 0.7, "web_zh": 0.3}, 10_000, 4, 0)
    assert "code" not in plan.sources and len(plan.unused(DOCS)["code"]) == 400
    with pytest.raises(ValueError, match="no document of it survived"):
        plan_mix({**DOCS, "web_zh": {}}, SHARES, 10_000, 4, 0)


def test_held_out_slice_is_stable_and_about_the_right_size() -> None:
    ids = [f"web_en/{i:06d}" for i in range(20_000)]
    held = [i for i in ids if is_held_out(i, 0.05)]
    assert 800 < len(held) < 1200
    assert held == [i for i in ids if is_held_out(i, 0.05)]
