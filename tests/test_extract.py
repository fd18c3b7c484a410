"""Extract: HTML main text with title, code with its language, and a reason for every failure."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import lxml.html
import pytest
import trafilatura
from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter

from dataengine.extract import extract_batch
from dataengine.extract.code import decode_code, language_of
from dataengine.extract.html import extract_page
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.sample import debian_dir, ensure_packages

PG_HTML = "postgresql-doc-15/usr/share/doc/postgresql-doc-15/html"
PY_HTML = "python3.11-doc/usr/share/doc/python3.11/html"

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


@pytest.fixture(scope="module")
def pg_docs() -> Path:
    """PostgreSQL's HTML manual from the default corpus (fetched with apt-get on first use, then cached)."""
    ensure_packages(["postgresql-doc-15"], progress=False)
    return debian_dir() / "root" / PG_HTML


def test_whitespace_only_lines_no_longer_count_as_duplicated_lines(pg_docs: Path) -> None:
    raw = (pg_docs / "libpq-envars.html").read_bytes()  # its <dl> indentation comes out as tab/space-only lines
    plain = trafilatura.bare_extraction(raw, include_tables=True, deduplicate=False).text
    text, spans, _, reason = extract_page(raw, "http://postgresql-doc-15.sample.local/libpq-envars.html")
    assert reason is None and spans == []
    assert sum(1 for line in plain.split("\n") if line and not line.strip()) > 20
    assert all(line.strip() or not line for line in text.split("\n")) and "\n\n\n" not in text
    assert text.split() == plain.split()  # only whitespace changed
    lines_only = GopherRepetitionFilter(top_n_grams=(), dup_n_grams=())  # datatrove's line and paragraph rules
    assert lines_only.filter(Document(text=plain, id="before")) == (False, "dup_line_frac")
    assert lines_only.filter(Document(text=text, id="after")) is True


def test_code_spans_are_the_pre_blocks_of_a_real_page(pg_docs: Path) -> None:
    raw = (pg_docs / "tutorial-select.html").read_bytes()
    table = extract_batch(rows_to_table([doc_row(source="web_en", kind="html", url="http://pg/t.html", raw=raw)]))
    row = table.to_pylist()[0]
    text, spans = row["text"], [(d["start"], d["end"]) for d in row["code_spans"]]
    pres = [pre.text_content().strip("\n") for pre in lxml.html.fromstring(raw).iter("pre")]
    assert len(pres) == 13 and [text[s:e] for s, e in spans] == pres  # indentation and column alignment kept
    assert row["code_share"] == pytest.approx(sum(e - s for s, e in spans) / len(text))
    assert "SELECT * FROM weather\n    WHERE city = 'San Francisco' AND prcp > 0.0;" in pres


def test_page_without_folded_blocks_is_unchanged(pg_docs: Path) -> None:
    """Its text and spans as extracted before folded blocks were restored, byte for byte."""
    text, spans, _, _ = extract_page((pg_docs / "tutorial-select.html").read_bytes(), "http://pg/t.html")
    digest = hashlib.sha256(json.dumps([text, spans]).encode()).hexdigest()
    assert digest == "0fc694232af35fdaf5586d9a5d7e3de61ee982d10b59abe2027cf6a35b8db8ac"


@pytest.fixture(scope="module")
def py_docs() -> Path:
    """Python's HTML documentation from the default corpus (fetched with apt-get on first use, then cached)."""
    ensure_packages(["python3.11-doc"], progress=False)
    return debian_dir() / "root" / PY_HTML


def test_code_blocks_inside_definitions_keep_their_lines(py_docs: Path) -> None:
    raw = (py_docs / "library" / "asyncio-sync.html").read_bytes()  # every <pre> in a <dd>, which trafilatura folds
    text, spans, _, reason = extract_page(raw, "http://python3.11-doc.sample.local/library/asyncio-sync.html")
    pres = list(lxml.html.fromstring(raw).iter("pre"))
    assert reason is None and len(pres) == 10 and all(any(a.tag == "dd" for a in p.iterancestors()) for p in pres)
    assert [text[s:e].split("\n") for s, e in spans] == [p.text_content().strip("\n").split("\n") for p in pres]
    assert all(text[s - 1] == "\n" and text[e : e + 1] in ("\n", "") for s, e in spans)  # on lines of their own


def test_code_share_of_prose_and_code_heavy_pages(pg_docs: Path) -> None:
    rows = [
        doc_row(source="web_en", kind="html", url=f"http://pg/{name}", raw=(pg_docs / name).read_bytes())
        for name in ("libpq-envars.html", "textsearch-debugging.html")
    ]
    prose, code = extract_batch(rows_to_table(rows)).to_pylist()
    assert prose["code_share"] == 0.0 and prose["code_spans"] == []
    assert code["code_share"] > 0.6
