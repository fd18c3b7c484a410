"""HTML -> main text and title with trafilatura (precision-oriented settings, no comments, tables kept)."""

from __future__ import annotations

import logging

import trafilatura

logging.getLogger("trafilatura").setLevel(logging.ERROR)
logging.getLogger("htmldate").setLevel(logging.ERROR)


def extract_html(raw: bytes, url: str) -> tuple[str | None, str | None, str | None]:
    """``(text, title, reject_reason)`` for one page."""
    if not raw.strip():
        return None, None, "empty"
    if b"\0" in raw[:8192]:
        return None, None, "binary"
    try:
        doc = trafilatura.bare_extraction(
            raw,
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
        return None, None, "no_main_text"
    return doc.text, doc.title, None
