"""Exact dedup on real Ray: copies that differ only in case or layout collapse onto the smallest id."""

from __future__ import annotations

import ray.data

from dataengine.dedup.exact import find_duplicates, mark_duplicates, normalised_hash
from dataengine.schema import doc_row, rows_to_table


def test_normalisation_ignores_case_and_whitespace_only() -> None:
    assert normalised_hash("Hello   World\n") == normalised_hash("hello world")
    assert normalised_hash("hello world") != normalised_hash("hello, world")


def test_duplicates_across_sources_keep_the_smallest_id(ray_local: None) -> None:
    rows = [
        doc_row(source="web_en", kind="text", url="a", text="The same page.\nTwice."),
        doc_row(source="code", kind="text", url="b", text="the same page. twice."),
        doc_row(source="web_zh", kind="text", url="c", text="THE SAME PAGE.   TWICE."),
        doc_row(source="web_en", kind="text", url="d", text="A different page."),
        doc_row(source="web_en", kind="text", url="e", text="The same page. Twice.", reject="min_length:too_short"),
    ]
    ds = ray.data.from_arrow([rows_to_table(rows[:2]), rows_to_table(rows[2:])])
    dups = find_duplicates(ds)
    group = sorted(r["id"] for r in rows[:3])
    assert dups == {group[1]: group[0], group[2]: group[0]}
    marked = mark_duplicates(rows_to_table(rows), dups).to_pylist()
    by_id = {r["id"]: r for r in marked}
    assert by_id[group[0]]["reject"] is None
    assert by_id[group[1]]["reject"] == "exact_dedup:duplicate"
    assert by_id[group[1]]["reject_detail"] == f"kept={group[0]}"
    assert by_id[rows[4]["id"]]["reject"] == "min_length:too_short"  # its first rejection stands
