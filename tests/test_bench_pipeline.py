"""The pipeline benchmark's decision matching: pages compared by URL, differences counted by our decision."""

from __future__ import annotations

from bench.pipeline import agreement


def test_agreement_counts_each_differing_page_by_our_decision() -> None:
    universe = {"a", "b", "c", "d", "e"}
    ours = {"a": None, "b": "gopher_quality:short", "c": None, "d": "near_dedup:duplicate"}
    same, differ = agreement(universe, ours, peer_kept={"a", "b", "x"})
    # a: both keep; b: only datatrove keeps; c: only we keep; d, e (unseen by us): both drop
    assert same == 3 / 5
    assert differ == {"gopher_quality": 1, "kept": 1}


def test_agreement_of_nothing_is_one() -> None:
    assert agreement(set(), {}, set()) == (1.0, {})
