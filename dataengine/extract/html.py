"""HTML -> main text and title with trafilatura (precision-oriented settings, no comments, tables kept).

UTF-16/32 pages are decoded first and stray NUL bytes in UTF-8 pages dropped, rather than rejected as
``binary``; a page nested deeper than libxml2's limit (256 levels), whose text the parser throws away, is
``too_deep`` rather than ``no_main_text``.
"""

from __future__ import annotations

import logging

import lxml.etree
import trafilatura

from dataengine.extract.encoding import decode_wide, stray_nuls

logging.getLogger("trafilatura").setLevel(logging.ERROR)
logging.getLogger("htmldate").setLevel(logging.ERROR)


def extract_html(raw: bytes, url: str) -> tuple[str | None, str | None, str | None]:
    """``(text, title, reject_reason)`` for one page."""
    if not raw.strip():
        return None, None, "empty"
    page: bytes | str = raw
    if b"\0" in raw[:8192]:
        wide = decode_wide(raw)
        if wide is not None:
            page = wide
        elif stray_nuls(raw):
            page = raw.replace(b"\0", b"")
        else:
            return None, None, "binary"
    try:
        doc = trafilatura.bare_extraction(
            page,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            deduplicate=False,
            favor_precision=False,
        )
    except (ValueError, TypeError, AttributeError, RecursionError) as e:
        return None, None, f"parse_error:{type(e).__name__}"
    if doc is None or not (doc.text or "").strip():
        return None, None, "too_deep" if too_deep(page) else "no_main_text"
    return doc.text, doc.title, None


def too_deep(page: bytes | str) -> bool:
    """Whether libxml2 cut the page at its nesting limit (parsed again only for pages without main text)."""
    parser = lxml.etree.HTMLParser(recover=True, no_network=True)
    try:
        lxml.etree.fromstring(page, parser)
    except (lxml.etree.LxmlError, ValueError):
        pass  # what matters is the error log
    return any("Excessive depth" in error.message for error in parser.error_log)
