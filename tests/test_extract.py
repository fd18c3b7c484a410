"""Extract: HTML main text with title, code with its language, and a reason for every failure."""

from __future__ import annotations

import json
import unicodedata

from dataengine.extract import extract_batch
from dataengine.extract.code import decode_code, language_of
from dataengine.schema import doc_row, rows_to_table

PAGE = b"""<html><head><title>Release notes</title></head><body>
<nav><a href="/">Home</a> <a href="/docs">Docs</a></nav>
<article><h1>Release notes</h1><p>This release makes the crawler polite: it honours robots.txt and keeps one
connection per host.</p><p>It also writes every fetched page to a WARC file so that builds can be repeated.</p>
</article><footer>Copyright</footer></body></html>"""


def test_html_main_text_and_title_in_meta() -> None:
    table = extract_batch(rows_to_table([doc_row(source="w", kind="html", url="http://x.test/a", raw=PAGE)]))
    row = table.to_pylist()[0]
    assert row["reject"] is None
    assert "honours robots.txt" in row["text"] and "Home" not in row["text"]
    assert json.loads(row["meta"])["title"] == "Release notes"
    assert row["raw"] is None


def test_code_language_binary_and_encoding() -> None:
    assert language_of("src/main.rs") == "rust" and language_of("a/Makefile") == "makefile"
    assert decode_code(b"package main\n", "x.go") == ("package main\n", "go", None)
    assert decode_code(b"\x00\x01ELF", "x.py")[2] == "binary"
    assert decode_code("caf\xe9".encode("latin-1"), "x.py")[2] == "invalid_utf8"
    assert decode_code(b'{"a": 1}', "data.json")[2] == "not_code"


def test_every_row_gets_text_or_a_reason_and_text_is_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "é à ü — café au lait, déjà vu")
    rows = [
        doc_row(source="c", kind="code", url="r/a.py", raw=f"s = '{decomposed}'\n".encode(), meta={"path": "a.py"}),
        doc_row(source="c", kind="code", url="r/b.py", raw=b"   \n\n", meta={"path": "b.py"}),
        doc_row(source="w", kind="html", url="u", raw=b""),
        doc_row(source="t", kind="text", url="u2", text="plain text"),
        doc_row(source="t", kind="text", url="u3", text="dropped earlier", reject="read:malformed_json"),
    ]
    out = extract_batch(rows_to_table(rows)).to_pylist()
    assert [r["reject"] for r in out] == [None, "extract:empty", "extract:empty", None, "read:malformed_json"]
    assert out[0]["lang"] == "python" and unicodedata.is_normalized("NFC", out[0]["text"])
