"""Decontamination: a training document that quotes an evaluation item is dropped, naming the task."""

from __future__ import annotations

import pyarrow as pa

from dataengine.config import DecontamConfig
from dataengine.filters.decontam import REASON, build_index, contaminating_task, decontaminate_batch
from dataengine.mix.plan import HeldOut, held_out_hash
from dataengine.schema import doc_row, rows_to_table
from pipelines.placebo import scramble_lines

LONG = (
    "Alice puts the red ball in box A and the green ball in box B, then she swaps the two balls; "
    "which ball is in box A now? The green ball."
)
ZH = "小明有三个苹果，又买了四个苹果，现在小明一共有几个苹果？详细解题思路如下：三加四等于七。"
SHORT = "not True and False is False"


def index():
    items = [("tracking", LONG), ("zh_arith", ZH), ("boolean", SHORT), ("tiny", "1 + 1 = 2")]
    return build_index(items, DecontamConfig())


def test_long_items_match_on_13_grams_inside_longer_documents() -> None:
    doc = "Forum post. " + LONG.upper().replace(",", " ,") + " Thanks for reading."
    assert contaminating_task(index(), pa.array([doc])) == ["tracking"]


def test_a_13_gram_is_enough_and_fewer_words_are_not() -> None:
    words = LONG.replace(",", "").replace(";", "").split()
    assert contaminating_task(index(), pa.array([" ".join(words[5:18]), " ".join(words[5:17])])) == [
        "tracking",
        None,
    ]


def test_digits_are_kept_so_other_numbers_do_not_match() -> None:
    idx = build_index(
        [("arith", "Question: what is 123 plus 456 minus 78 times 9 divided by 3 equals 42?")], DecontamConfig()
    )
    same = "what is 123 plus 456 minus 78 times 9 divided by 3 equals 42"
    other = "what is 124 plus 456 minus 78 times 9 divided by 3 equals 42"
    assert contaminating_task(idx, pa.array([same, other])) == ["arith", None]


def test_chinese_items_match_on_characters_without_spaces() -> None:
    doc = "今天的作业：" + ZH[:20] + "……"
    assert contaminating_task(index(), pa.array([doc, "今天天气很好，我们去公园散步吧。"])) == ["zh_arith", None]


def test_short_items_match_whole_and_too_short_items_are_counted_not_used() -> None:
    idx = index()
    assert contaminating_task(idx, pa.array(["x = not true and false is false", "not true and false"])) == [
        "boolean",
        None,
    ]
    assert idx.skipped == {"tiny": 1}
    assert contaminating_task(idx, pa.array(["we know 1 + 1 = 2"])) == [None]


def test_the_batch_stage_rejects_with_the_task_and_keeps_earlier_rejections() -> None:
    rows = [
        doc_row(source="web_en", kind="html", url=f"u{i}", raw=b"", text=text, lang="en")
        for i, text in enumerate(["An unrelated page about gardening and tomatoes.", "Quiz! " + LONG, LONG])
    ]
    table = rows_to_table(rows)
    table = table.set_column(
        table.schema.get_field_index("reject"), "reject", pa.array([None, None, "min_length:too_short"])
    )
    out = decontaminate_batch(table, index())
    assert out["reject"].to_pylist() == [None, REASON, "min_length:too_short"]
    assert out["reject_detail"].to_pylist()[1] == "task=tracking"


def test_scrambled_code_keeps_its_lines_but_not_their_order_and_spares_the_held_out_slice() -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(40))
    rows = [doc_row(source="code", kind="code", url=f"f{i}.py", raw=b"", text=code, lang="python") for i in range(3)]
    rows.append(doc_row(source="web_en", kind="html", url="p", raw=b"", text=code, lang="en"))
    table = rows_to_table(rows)
    out = scramble_lines(table, ["code"], HeldOut(0.0))
    texts = out["text"].to_pylist()
    assert all(sorted(t.split("\n")) == sorted(code.split("\n")) for t in texts)
    assert texts[1] != code and texts[2] != code and texts[3] == code  # web_en untouched
    assert scramble_lines(table, ["code"], HeldOut(1.0))["text"].to_pylist() == [code] * 4  # all held out
    first = min(range(3), key=lambda i: held_out_hash(table["id"][i].as_py()))  # held out by a token budget's cut
    spared = HeldOut(0.0, {"code": held_out_hash(table["id"][first].as_py()) + 1})
    assert [t == code for t in scramble_lines(table, ["code"], spared)["text"].to_pylist()[:3]] == [
        i == first for i in range(3)
    ]
