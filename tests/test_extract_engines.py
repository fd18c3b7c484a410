"""The two HTML engines (trafilatura, resiliparse) on real pages with code blocks, and the per-source switch.

Real pages: Python's Functional Programming HOWTO (Sphinx, highlighted ``<pre>`` blocks) and the first chapter
of the Debian Reference (DocBook XHTML, whose ``<a id="..."/>`` anchors an HTML5 parser leaves open), from the
sample's Debian packages.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml
from rich.console import Console

from dataengine.config import SourceConfig, load_mix, load_sources
from dataengine.extract import ENGINES, extract_batch
from dataengine.extract.html import extract_page
from dataengine.extract.html_resiliparse import extract_page_resiliparse
from dataengine.extract.spans import spans_of
from dataengine.pipeline import Context, cache_key
from dataengine.schema import doc_row, rows_to_table
from dataengine.sources.sample import debian_dir, ensure_packages
from pipelines.build import stages as build_stages

FUNCTIONAL = "python3.11-doc/usr/share/doc/python3.11/html/howto/functional.html"
REFERENCE = "debian-reference-en/usr/share/debian-reference/ch01.en.html"


@pytest.fixture(scope="module")
def debian() -> Path:
    """The unpacked Debian packages these tests read (fetched with apt-get on first use, then cached)."""
    ensure_packages(sorted({p.split("/")[0] for p in (FUNCTIONAL, REFERENCE)}), progress=False)
    return debian_dir() / "root"


def blocks(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_both_engines_find_the_code_blocks_of_a_real_page(debian: Path) -> None:
    raw = (debian / FUNCTIONAL).read_bytes()
    ours, theirs = extract_page_resiliparse(raw, "x"), extract_page(raw, "x")
    assert ours[3] is None and theirs[3] is None
    code, reference = blocks(ours[0], ours[1]), blocks(theirs[0], theirs[1])
    assert len(code) == len(reference) == 60
    assert code[0].startswith(">>> L = [1, 2, 3]\n>>> it = iter(L)\n")
    assert code == reference  # with the blocks whose lines trafilatura folds given their lines back
    assert ">>> def upper(s):\n...     return s.upper()" in code
    sentence = "we’ll take a tour of Python’s features suitable for implementing programs in a functional style."
    assert sentence in " ".join(ours[0].split()) and sentence in " ".join(theirs[0].split())
    assert "Table of Contents" not in ours[0]  # the sidebar is not main content


def test_resiliparse_keeps_sections_after_xhtml_anchors(debian: Path) -> None:
    raw = (debian / REFERENCE).read_bytes()
    text, spans, _, reason = extract_page_resiliparse(raw, "x")
    assert reason is None
    assert "you can create a training user account" in text  # a section opened by <a id="..."/>
    assert "# adduser fish" in blocks(text, spans)
    assert len(text) > 0.9 * len(extract_page(raw, "x")[0])


def test_block_and_inline_code_on_a_made_page() -> None:
    page = (
        b"<html><head><title>t</title></head><body><nav><a href='/'>Home</a> <a href='/a'>API</a></nav><article>"
        b"<p>Call <code>run()</code> once; the loop below reads every record of the file in order and counts them."
        b"</p><div><code>pip install dataengine</code></div><pre><span>for</span> x <span>in</span> rows:\n\n"
        b"    n += 1</pre><p>That is all there is to it, and the count is printed at the end of the run.</p>"
        b"</article><footer>(c) 2026</footer></body></html>"
    )
    for engine in (extract_page_resiliparse, extract_page):
        text, spans, _, reason = engine(page, "x")
        assert reason is None and "Home" not in text
        assert blocks(text, spans) == ["pip install dataengine", "for x in rows:\n\n    n += 1"], engine.__name__
        assert "Call run() once" in text  # inline code is prose


def test_engine_names_match_the_config() -> None:
    assert set(get_args(SourceConfig.model_fields["extract"].annotation)) == set(ENGINES)
    with pytest.raises(ValueError, match="extract"):
        SourceConfig(name="web", kind="warc", paths=[], extract="readability")


def test_switch_reaches_extraction_and_the_cache_key(debian: Path, tmp_path: Path) -> None:
    files = tmp_path / "sources.yaml"
    listed = [{"name": "web_en", "kind": "html_dir", "paths": ["pages"], "lang": "en"}]
    files.write_text(yaml.safe_dump({"sources": listed}))
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump({"sources": [listed[0] | {"extract": "resiliparse"}]}))
    mix = load_mix("code30")
    contexts = [
        Context(mix, load_sources(tmp_path / name), 1, str(tmp_path), str(tmp_path), Console())
        for name in ("sources.yaml", "fast.yaml")
    ]
    stages = build_stages()
    extract = next(s for s in stages if s.name == "extract")
    assert [extract.kwargs(c)["engines"] for c in contexts] == [{"web_en": "trafilatura"}, {"web_en": "resiliparse"}]
    assert extract.reads(contexts[0]) != extract.reads(contexts[1])
    assert cache_key(stages, contexts[0], "tagged") != cache_key(stages, contexts[1], "tagged")

    raw = (debian / FUNCTIONAL).read_bytes()
    table = rows_to_table([doc_row(source="web_en", kind="html", url="x", raw=raw)])
    for ctx, engine in zip(contexts, (extract_page, extract_page_resiliparse), strict=True):
        out = extract_batch(table, **extract.kwargs(ctx))
        text, spans, _, _ = engine(raw, "x")
        assert out["text"][0].as_py() == text and spans_of(out["code_spans"])[0] == spans
