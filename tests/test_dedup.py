"""Exact dedup on real Ray: copies that differ only in case or layout collapse onto the smallest id."""

from __future__ import annotations

import random

import pyarrow as pa
import ray.data

from dataengine.dedup.exact import exact_dedup, normalised_hash
from dataengine.schema import doc_row, rows_to_table


def test_normalisation_ignores_case_and_whitespace_only() -> None:
    assert normalised_hash("Hello   World\n") == normalised_hash("hello world")
    assert normalised_hash("hello world") != normalised_hash("hello, world")


def _dataset(rows: list[dict], blocks: int) -> ray.data.Dataset:
    return ray.data.from_arrow([rows_to_table(rows[i::blocks]) for i in range(blocks)])


def test_duplicates_across_sources_keep_the_smallest_id(ray_local: None) -> None:
    rows = [
        doc_row(source="web_en", kind="text", url="a", text="The same page.\nTwice."),
        doc_row(source="code", kind="text", url="b", text="the same page. twice."),
        doc_row(source="web_zh", kind="text", url="c", text="THE SAME PAGE.   TWICE."),
        doc_row(source="web_en", kind="text", url="d", text="A different page."),
        doc_row(source="web_en", kind="text", url="e", text="The same page. Twice.", reject="min_length:too_short"),
    ]
    marked = exact_dedup(_dataset(rows, 2)).take_all()
    assert len(marked) == len(rows)
    group = sorted(r["id"] for r in rows[:3])
    by_id = {r["id"]: r for r in marked}
    assert by_id[group[0]]["reject"] is None
    assert by_id[group[1]]["reject"] == "exact_dedup:duplicate"
    assert by_id[group[1]]["reject_detail"] == f"kept={group[0]}"
    assert by_id[group[2]]["reject_detail"] == f"kept={group[0]}"
    assert by_id[rows[3]["id"]]["reject"] is None
    assert by_id[rows[4]["id"]]["reject"] == "min_length:too_short"  # its first rejection stands


def _reference(rows: list[dict]) -> dict[str, str]:
    """``{duplicate id: kept id}`` by a plain dictionary over the kept rows."""
    smallest: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        if row["reject"] is None:
            smallest.setdefault(normalised_hash(row["text"]), row["id"])
    return {
        r["id"]: smallest[normalised_hash(r["text"])]
        for r in rows
        if r["reject"] is None and smallest[normalised_hash(r["text"])] != r["id"]
    }


def test_same_decisions_as_a_dictionary_whatever_the_blocks(ray_local: None) -> None:
    rng = random.Random(0)
    texts = [f"page {i} of the manual" for i in range(40)]
    rows = [
        doc_row(
            source=rng.choice(["web_en", "code"]),
            kind="text",
            url=f"u{n}",
            text=rng.choice(texts).upper() if n % 3 else rng.choice(texts),
            reject="min_length:too_short" if n % 11 == 0 else None,
        )
        for n in range(300)
    ]
    expected = _reference(rows)
    assert len(expected) > 100
    results = []
    for blocks in (1, 2, 5):
        out = exact_dedup(_dataset(rows, blocks)).take_all()
        found = {r["id"]: r["reject_detail"][len("kept=") :] for r in out if r["reject"] == "exact_dedup:duplicate"}
        assert found == expected
        results.append(pa.Table.from_pylist(sorted(out, key=lambda r: r["id"])))
    assert all(t.equals(results[0]) for t in results)
