"""Code spans: markers taken out of text, whitespace normalised around code, Markdown blocks, spans moved by edits."""

from __future__ import annotations

import pyarrow as pa
import pytest
import ray

from dataengine.extract import extract_batch
from dataengine.extract.markdown import markdown_spans
from dataengine.extract.spans import normalize_whitespace, remap, restore_lines, spans_of, take_markers
from dataengine.filters.pii import redact_batch, redact_spans
from dataengine.schema import CODE_SPANS, DOC_SCHEMA, doc_row, rows_to_table

OPEN, CLOSE, BLANK = "\u2402", "\u2403", "\u2422"


def texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_markers_become_spans_and_marker_only_lines_go() -> None:
    text, spans = take_markers(
        f"Run this:\n{OPEN}\nls -l\n{BLANK}\n  cd /\n{CLOSE}\nThen that {OPEN}x = 1{CLOSE} inline.", OPEN, CLOSE, BLANK
    )
    assert text == "Run this:\nls -l\n\n  cd /\nThen that x = 1 inline."
    assert texts(text, spans) == ["ls -l\n\n  cd /", "x = 1"]


def test_unpaired_markers_make_no_span_and_flattened_blocks_leave_no_double_space() -> None:
    text, spans = take_markers(f"a {CLOSE} b {OPEN}c", OPEN, CLOSE, BLANK)
    assert (text, spans) == ("a b c", [])
    text, spans = take_markers(f"see {OPEN}f(x); {CLOSE} then\nend {OPEN}g(); {CLOSE}", OPEN, CLOSE, BLANK)
    assert text == "see f(x); then\nend g();" and texts(text, spans) == ["f(x); ", "g();"]


def test_folded_blocks_get_their_lines_back_on_lines_of_their_own() -> None:
    block, kept, twin = "for x in xs:\n    print(x)", "a = 1\nb = 2", "f(x,  y)"
    text = "Loop: for x in xs: print(x) then more.\na = 1\nb = 2\nand f(x, y) and end"
    spans = [(text.index(b), text.index(b) + len(b)) for b in ("for x in xs: print(x) ", kept, "f(x, y)")]
    out, moved = restore_lines(text, spans, [block, kept, twin, "f(x,\ny)"])
    assert out == "Loop:\nfor x in xs:\n    print(x)\nthen more.\na = 1\nb = 2\nand f(x, y) and end"
    assert texts(out, moved) == [block, kept, "f(x, y)"]  # blocks that differ with the same words: left alone
    out, moved = restore_lines(text, spans, [block, kept, twin])  # a folded one-line block leaves the prose too
    assert out.endswith("b = 2\nand\nf(x,  y)\nand end") and texts(out, moved) == [block, kept, twin]
    assert restore_lines(text, spans, [kept]) == (text, spans)  # nothing folded: nothing changes
    text = "g(a, b) g(a, b)"
    out, moved = restore_lines(text, [(0, 7), (8, 15)], ["g(a,\n b)", "g(a,\n  b)"])
    assert texts(out, moved) == ["g(a,\n b)", "g(a,\n  b)"]  # as many blocks as spans: taken in order


def test_whitespace_only_lines_emptied_and_runs_collapsed_outside_code() -> None:
    code = "def f():\n\t\n    return 1\n\n\n    # end"
    text = f"  \n\t\nIntro line\n   \n \t \n\nMore\n{code}\n  \n\n"
    start = text.index(code)
    out, spans = normalize_whitespace(text, [(start, start + len(code))])
    assert out == f"Intro line\n\nMore\n{code}"
    assert texts(out, spans) == [code]  # the code block's own blank and tab-only lines stay


def test_markdown_fenced_and_indented_blocks() -> None:
    text = (
        "Install it:\n\n```sh\npip install x\n\nx --help\n```\n\nThen call it:\n\n"
        "    import x\n    x.run()\n\n    x.stop()\n\nDone.\n~~~\nunclosed fence"
    )
    assert texts(text, markdown_spans(text)) == [
        "pip install x\n\nx --help",
        "    import x\n    x.run()\n\n    x.stop()",
        "unclosed fence",
    ]


def test_indented_prose_is_not_code() -> None:
    # extracted web text indents its paragraphs with the HTML's indentation: that is the text's margin
    text = "    First paragraph of prose.\n    Still prose.\n\n    Another paragraph.\nSELECT 1;\n\n    More prose."
    assert markdown_spans(text) == []
    assert markdown_spans("Intro\n    not code: no blank line before\n") == []


def test_remap_through_replacements() -> None:
    # "ab[cdef]gh" with "cd" -> "X" (inside the span) and "h" -> "YYY" (after it)
    assert remap([(2, 6)], [(2, 4, 1), (7, 8, 3)]) == [(2, 5)]
    assert remap([(2, 6)], [(0, 1, 5)]) == [(6, 10)]  # an edit before moves the span
    assert remap([(2, 6)], [(4, 8, 0)]) == [(2, 4)]  # an edit across the end cuts it at the replacement
    assert remap([(2, 4)], [(1, 5, 0)]) == []  # a span replaced entirely is gone


def test_redaction_moves_spans() -> None:
    code = 'conn = connect("10.0.0.1")\nmail("dev@corp-mail.com")'
    text = f"Write to jane.doe@gmail.com or 8.8.8.8 today\n{code}\nThanks."
    start = text.index(code)
    out, counts, spans = redact_spans(text, [(start, start + len(code))])
    assert counts == {"email": 2, "ip": 1}
    assert texts(out, spans) == ['conn = connect("10.0.0.1")\nmail("<EMAIL>")']


def test_extract_batch_fills_spans_and_share_per_kind() -> None:
    rows = [
        doc_row(source="c", kind="code", url="r/a.py", raw=b"def f():\n\n    return 1\n", meta={"path": "a.py"}),
        doc_row(source="t", kind="text", url="t1", text="Prose only.\n  \n\t\n\nStill prose."),
        doc_row(source="t", kind="text", url="t2", text="Example:\n\n```\nprint(1)\n```\n"),
        doc_row(source="t", kind="text", url="t3", text="read failed", reject="read:malformed_json"),
    ]
    table = extract_batch(rows_to_table(rows))
    assert table.schema.field("code_spans").type == CODE_SPANS
    out = table.to_pylist()
    assert out[0]["code_share"] == 1.0 and out[0]["code_spans"] == [{"start": 0, "end": len(out[0]["text"])}]
    assert out[1]["text"] == "Prose only.\n\nStill prose." and out[1]["code_share"] == 0.0
    assert texts(out[2]["text"], spans_of(table["code_spans"])[2]) == ["print(1)"]
    assert out[2]["code_share"] == pytest.approx(len("print(1)") / len(out[2]["text"]))
    assert out[3]["code_spans"] == [] and out[3]["code_share"] == 0.0


def test_text_documents_of_a_code_source_are_code() -> None:
    source = "def f():\n    \n\n\n    return 1\n"  # a file from a jsonl dump of code: whitespace untouched
    rows = [doc_row(source="stack", kind="text", url="a.py", text=source)]
    out = extract_batch(rows_to_table(rows), code_sources=["stack"]).to_pylist()[0]
    assert out["text"] == source and out["code_share"] == 1.0


def test_columns_survive_ray_stages(ray_local: None) -> None:
    rows = [
        doc_row(source="t", kind="text", url=f"u{i}", text=f"Mail x{i}@gmail.com\n\n```\nip = '8.8.8.{i}'\n```")
        for i in range(4)
    ]
    ds = ray.data.from_arrow(rows_to_table(rows)).repartition(2)
    ds = ds.map_batches(extract_batch, batch_format="pyarrow").map_batches(redact_batch, batch_format="pyarrow")
    table = pa.concat_tables(ray.get(ds.to_arrow_refs())).sort_by("url")
    assert table.schema.field("code_spans").type == DOC_SCHEMA.field("code_spans").type
    for text, spans in zip(table["text"].to_pylist(), spans_of(table["code_spans"]), strict=True):
        assert texts(text, spans) == ["ip = '<IP_ADDRESS>'"]


PAGE = b"""<html><head><title>Iterators</title></head><body><article>
<h1>Iterators</h1>
<p>An iterator yields the items of a sequence one by one; call <code>next()</code> on it to get the next
item, and the loop below shows the protocol that every for statement relies on when it walks a list.</p>
<pre>it = iter([1, 2])

while True:
    print(next(it))</pre>
<p>The same loop written as a comprehension is shorter and just as clear to a reader of the program text,
and it builds the list of results in one expression instead of appending inside the loop body.</p>
<div><code>squares = [x * x for x in range(10)]</code></div>
<p>Both forms are equivalent, and the second one is what most Python programmers would write today.</p>
</article></body></html>"""


def test_html_pre_and_block_code_are_spans_inline_code_is_prose() -> None:
    row = extract_batch(rows_to_table([doc_row(source="w", kind="html", url="http://x.test/it", raw=PAGE)]))
    text, spans = row["text"][0].as_py(), spans_of(row["code_spans"])[0]
    assert texts(text, spans) == [
        "it = iter([1, 2])\n\nwhile True:\n    print(next(it))",  # its empty line kept
        "squares = [x * x for x in range(10)]",
    ]
    assert "call next() on it" in text and 0.1 < row["code_share"][0].as_py() < 0.5
