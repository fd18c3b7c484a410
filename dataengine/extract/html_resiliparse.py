"""HTML -> main text, its code blocks and title with resiliparse (``extract_plain_text``, main content on).

The fast engine (``extract: resiliparse`` in a source's config): lexbor's parser and resiliparse's
main-content heuristics in C++, several times trafilatura's pages per second (``python -m bench extract``).
Code blocks are found as in ``html.py`` (outermost ``<pre>``, block-standing ``<code>``) and marked the same way,
with the marker characters written into the block's first and last non-blank text nodes: a text node made of
a marker alone is dropped by resiliparse's main-content pass, one that also holds the block's text is kept.
resiliparse keeps a ``<pre>``'s empty lines, so no empty-line marker is needed.

XHTML's self-closed elements (DocBook's ``<a id="x"/>`` anchors) are closed before parsing: an HTML5 parser
leaves such an ``<a>`` open over the rest of the section, and the main-content pass then drops it all as link
text (Debian Reference's first chapter: 49k characters of trafilatura's 85k without this, 86k with it).
"""

from __future__ import annotations

import re
import unicodedata

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from resiliparse.parse.html import DOMNode, ElementNode, HTMLParserException, HTMLTree, NodeType

from dataengine.extract.html import BLOCK_PARENTS, MARKERS, decode_page
from dataengine.extract.spans import Span, normalize_whitespace, take_markers

# ``<name attrs/>`` of a non-void element (attributes, if any, ending in a quote: ``<a href=/x/>`` is a link)
SELF_CLOSED = re.compile(
    r"<(?!(?:area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)\b)([a-zA-Z][\w:-]*)"
    r"(\s[^<>]*?[\"'])?\s*/>"
)
# Code blocks as a CSS selector, so that lexbor, not Python, skips the many inline <code> of documentation pages
CANDIDATES = ", ".join(["pre", *(f"{parent} > code:only-child" for parent in sorted(BLOCK_PARENTS))])


def extract_page_resiliparse(raw: bytes, url: str) -> tuple[str | None, list[Span], str | None, str | None]:
    """``(text, code_spans, title, reject_reason)`` for one page (``url`` is unused: no site-specific rules)."""
    page, reason = decode_page(raw)
    if page is None:
        return None, [], None, reason
    if isinstance(page, bytes):
        page = _decode(page)
    if "/>" in page:
        page = SELF_CLOSED.sub(r"<\1\2></\1>", page)
    try:
        tree = HTMLTree.parse(page)
    except HTMLParserException as e:
        return None, [], None, f"parse_error:{type(e).__name__}"
    marks = next((m for m in MARKERS if not any(c in page for c in m)), None)
    if marks is not None and tree.body is not None:
        mark_code_blocks(tree.body, marks[0], marks[1])
    text = extract_plain_text(tree, preserve_formatting=True, main_content=True, comments=False, alt_texts=False)
    text = unicodedata.normalize("NFC", text)
    spans: list[Span] = []
    if marks is not None:
        text, spans = take_markers(text, *marks)
    if not text.strip():
        return None, [], None, "no_main_text"
    text, spans = normalize_whitespace(text, spans)
    return text, spans, tree.title or None, None


def _decode(page: bytes) -> str:
    """UTF-8 when the bytes are (whatever the page declares: a page that says Shift-JIS and is UTF-8 is common),
    else the declared or detected encoding, bytes it cannot decode dropped rather than the page read as CP-1252."""
    try:
        return page.decode("utf-8-sig")
    except UnicodeDecodeError:
        return bytes_to_str(page, detect_encoding(page, from_html_meta=True), fallback_encodings=())


def mark_code_blocks(body: ElementNode, open_mark: str, close_mark: str) -> None:
    """Write the markers around the text of every code block under ``body`` (the same blocks as ``html.py``)."""
    for el in body.query_selector_all(CANDIDATES):
        if el.tag == "code" and not _code_block(el):
            continue
        parent = el.parent
        if parent.type == NodeType.ELEMENT and parent.closest("pre, code") is not None:
            continue  # inside an outer block
        first, last = _edge_text(el, forward=True), _edge_text(el, forward=False)
        if first is None or last is None:
            continue  # a block without text
        first.text = open_mark + first.text
        last.text = last.text + close_mark


def _code_block(el: ElementNode) -> bool:
    """A ``<code>`` that is the whole content of a block-level parent (``html._code_block``'s rule)."""
    parent = el.parent
    return (
        parent is not None
        and parent.type == NodeType.ELEMENT
        and parent.tag in BLOCK_PARENTS
        and parent.child_element_count == 1
        and all(n.type != NodeType.TEXT or not n.text.strip() for n in parent.child_nodes)
    )


def _edge_text(el: DOMNode, forward: bool) -> DOMNode | None:
    """The first (or last) text node under ``el`` that holds more than whitespace, in document order.

    Walks siblings one at a time: a highlighted block has thousands of nodes, and only its ends are wanted.
    """
    node = el.first_child if forward else el.last_child
    while node is not None:
        if node.type == NodeType.TEXT:
            if node.text.strip():
                return node
        elif node.type == NodeType.ELEMENT:
            found = _edge_text(node, forward)
            if found is not None:
                return found
        node = node.next_sibling if forward else node.previous_sibling
    return None
