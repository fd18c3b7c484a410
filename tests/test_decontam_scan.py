"""Decontamination's bulk scan: the bitmap pre-test and the CJK-only character pass find what a full scan finds."""

from __future__ import annotations

import pyarrow as pa

from dataengine.config import DecontamConfig
from dataengine.filters.decontam import build_index, contaminating_task
from tests.corpus import ZH_SENTENCES

ZH = "小明有三个苹果，又买了四个苹果，现在小明一共有几个苹果？详细解题思路如下：三加四等于七。"
EN = [
    f"Question {i}: the train leaves station {i} at {i} o'clock and travels north for {i + 7} hours."
    for i in range(300)
]


def test_character_pass_skips_documents_without_cjk_and_finds_the_same() -> None:
    index = build_index([("zh_arith", ZH), *(("trains", q) for q in EN)], DecontamConfig())
    assert index.char_grams_hold_cjk
    docs = [
        "Notes. " + EN[123] + " End.",
        "你好。" + ZH[3:20] + "。",
        "no match at all here, just words",
        "".join(ZH_SENTENCES),
    ]
    expected = ["trains", "zh_arith", None, None]
    assert contaminating_task(index, pa.array(docs)) == expected
    index.char_grams_hold_cjk = False  # the full scan: every document's characters
    assert contaminating_task(index, pa.array(docs)) == expected


def test_a_chinese_item_with_a_long_latin_run_is_scanned_in_every_document() -> None:
    item = "圆周率的前十五位数字是 314159265358979，请背诵。"
    index = build_index([("pi", item)], DecontamConfig())
    assert not index.char_grams_hold_cjk  # "314159265358979" is a character 13-gram without CJK
    assert contaminating_task(index, pa.array(["digits: 3141592653589793", "digits: 2718281828459045"])) == ["pi", None]


def test_bitmap_passes_every_indexed_gram_and_few_others() -> None:
    index = build_index([("trains", q) for q in EN], DecontamConfig())
    docs = [f"Filler text number {i}. " + (EN[i] if i % 3 == 0 else "nothing to see") for i in range(300)]
    assert contaminating_task(index, pa.array(docs)) == ["trains" if i % 3 == 0 else None for i in range(300)]
    assert index.bitmap.mean() < 0.01
