"""HTML -> main text, its code blocks and title with trafilatura (no comments, tables kept).

Code blocks (``<pre>``, and ``<code>`` elements that stand as blocks) are marked in the parsed page with a
pair of printable marker characters that the page does not contain, so that they come through trafilatura's
extraction wherever their text does; the markers are then taken out of the text and become spans.  A block
whose lines trafilatura folded into one (a ``<pre>`` inside ``<dd>``, ``<li>``, ``<td>``...) gets its own text
back (``spans.restore_lines``).  The text is NFC-normalised and its whitespace-only lines emptied outside the code
blocks (``spans.normalize_whitespace``).

UTF-16/32 pages are decoded first and stray NUL bytes in UTF-8 pages dropped, rather than rejected as
``binary``; a page nested deeper than libxml2's limit (256 levels), whose text the parser throws away, is
``too_deep`` rather than ``no_main_text``.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import lxml.etree
import lxml.html
import trafilatura
from trafilatura.metadata import examine_meta, extract_meta_json, extract_title

from dataengine.extract.encoding import decode_wide, stray_nuls
from dataengine.extract.spans import Span, normalize_whitespace, restore_lines, take_markers

MAX_FILE_SIZE = trafilatura.settings.DEFAULT_CONFIG.getint("DEFAULT", "MAX_FILE_SIZE")  # what bare_extraction uses

logging.getLogger("trafilatura").setLevel(logging.ERROR)

# Marker triples (open, close, empty line), printable (trafilatura drops unprintable characters) and rare;
# the first triple absent from a page is used.  A page holding all of them gets no code spans.
MARKERS = (("\u2402", "\u2403", "\u2422"), ("\u2e02", "\u2e03", "\u2e0b"), ("\u2e1c", "\u2e1d", "\u2e1e"))
EMPTY_LINE = re.compile(r"\n(?=\n)")
# A <code> that is its parent's whole content is a block when the parent is one of these.
BLOCK_PARENTS = frozenset({"div", "section", "article", "main", "body", "figure", "blockquote", "details"})


def extract_html(raw: bytes, url: str) -> tuple[str | None, str | None, str | None]:
    """``(text, title, reject_reason)`` for one page."""
    text, _, title, reason = extract_page(raw, url)
    return text, title, reason


def extract_page(raw: bytes, url: str) -> tuple[str | None, list[Span], str | None, str | None]:
    """``(text, code_spans, title, reject_reason)`` for one page."""
    page, reason = decode_page(raw)
    if page is None:
        return None, [], None, reason
    try:
        tree = trafilatura.load_html(page, MAX_FILE_SIZE)
        title = page_title(tree) if tree is not None else None
        marks = mark_code_blocks(tree) if tree is not None else None
        doc = (
            None
            if tree is None
            else trafilatura.bare_extraction(
                tree,
                url=url,
                include_comments=False,
                include_tables=True,
                deduplicate=False,
                favor_precision=False,
            )
        )
    except (ValueError, TypeError, AttributeError, RecursionError) as e:
        return None, [], None, f"parse_error:{type(e).__name__}"
    text = unicodedata.normalize("NFC", doc.text or "") if doc is not None else ""
    spans: list[Span] = []
    if marks is not None:
        text, spans = take_markers(text, *marks[0])
        text, spans = restore_lines(text, spans, marks[1])
    if doc is None or not text.strip():
        return None, [], None, "too_deep" if too_deep(page) else "no_main_text"
    text, spans = normalize_whitespace(text, spans)
    return text, spans, title, None


def page_title(tree: lxml.html.HtmlElement) -> str | None:
    """The title trafilatura's metadata would give (meta tags, then JSON-LD, then ``<h1>``/``<title>``), without
    the rest of its metadata: dates (htmldate), authors, categories and licence made ``with_metadata=True`` cost
    as much as the extraction itself, and only the title is kept."""
    meta = examine_meta(tree)
    try:
        meta = extract_meta_json(tree, meta)
    except Exception:  # noqa: BLE001 - trafilatura's own call guards JSON-LD parsing the same way
        pass
    return meta.title or extract_title(tree)


def decode_page(raw: bytes) -> tuple[bytes | str | None, str | None]:
    """The page as the parser should get it, or ``(None, reason)``: UTF-16/32 decoded, stray NULs dropped.

    Both extraction engines share it, so an empty or binary page is rejected for the same reason by either.
    """
    if not raw.strip():
        return None, "empty"
    if b"\0" not in raw[:8192]:
        return raw, None
    wide = decode_wide(raw)
    if wide is not None:
        return wide, None
    if stray_nuls(raw):
        return raw.replace(b"\0", b""), None
    return None, "binary"


def mark_code_blocks(tree: lxml.html.HtmlElement) -> tuple[tuple[str, str, str], list[str]] | None:
    """Put an open/close marker around the text of every code block of ``tree``; the markers and the blocks'
    texts as parsed (NFC, outer line breaks dropped: what trafilatura gives when it keeps a block's lines), or None.

    Blocks are outermost ``<pre>`` elements and ``<code>`` elements outside them that are the whole content of
    a block-level parent; inline ``<code>`` in a sentence is prose.  Empty lines
    inside a block get the empty-line marker, since trafilatura drops empty lines.
    """
    content = "".join(tree.itertext())
    marks = next((m for m in MARKERS if not any(c in content for c in m)), None)
    if marks is None:
        return None
    blocks = [
        el
        for el in tree.iter("pre", "code")
        if not any(a.tag in ("pre", "code") for a in el.iterancestors()) and (el.tag == "pre" or _code_block(el))
    ]
    texts = [unicodedata.normalize("NFC", el.text_content()).strip("\n") for el in blocks]
    for el in blocks:
        for node in el.iter():
            node.text = EMPTY_LINE.sub("\n" + marks[2], node.text) if node.text else node.text
            if node is not el and node.tail:
                node.tail = EMPTY_LINE.sub("\n" + marks[2], node.tail)
        el.text = marks[0] + (el.text or "")
        if len(el):
            el[-1].tail = (el[-1].tail or "") + marks[1]
        else:
            el.text += marks[1]
    return marks, texts


def _code_block(el: lxml.html.HtmlElement) -> bool:
    """A ``<code>`` that is the whole content of a block-level parent (a line break in its text proves nothing:
    generated docs wrap inline code across source lines)."""
    parent = el.getparent()
    return (
        parent is not None
        and parent.tag in BLOCK_PARENTS
        and len(parent) == 1
        and not (parent.text or "").strip()
        and not (el.tail or "").strip()
    )


def too_deep(page: bytes | str) -> bool:
    """Whether libxml2 cut the page at its nesting limit (parsed again only for pages without main text)."""
    parser = lxml.etree.HTMLParser(recover=True, no_network=True)
    try:
        lxml.etree.fromstring(page, parser)
    except (lxml.etree.LxmlError, ValueError):
        pass  # what matters is the error log
    return any("Excessive depth" in error.message for error in parser.error_log)
