"""Which character set a fetched page is in, and whether it is text at all.

Browsers' order: a byte-order mark, then the HTTP ``charset``, then ``<meta charset>`` in the first bytes,
then (our addition) strict UTF-8, then charset-normalizer's guess; labels are mapped as the WHATWG Encoding
standard does (``gb2312``/``gbk`` -> ``gb18030``, ``iso-8859-1``/``ascii`` -> ``cp1252``).  Guessing runs only
when nothing is declared and the bytes are not UTF-8, since it is the slow step.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HEADER = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_WHATWG = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-8859-1": "cp1252", "latin1": "cp1252",
           "ascii": "cp1252", "us-ascii": "cp1252", "iso8859-1": "cp1252", "big5": "big5hkscs"}  # fmt: skip
SNIFF_BYTES = 8192


def declared(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type header, if it names a known codec."""
    m = _HEADER.search(content_type)
    return _codec(m[1]) if m else None


def detect(body: bytes, content_type: str = "") -> str:
    """A Python codec name for ``body``."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    label = declared(content_type)
    if label:
        return label
    m = _META.search(body[:4096])
    if m and (label := _codec(m[1].decode("ascii"))):
        return label
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        if e.start >= len(body) - 3:  # a multi-byte character cut by truncation
            return "utf-8"
    best = from_bytes(body[: 4 * SNIFF_BYTES]).best()
    return _codec(best.encoding) if best is not None else "cp1252"


def to_text(body: bytes, charset: str) -> str:
    return body.decode(charset, errors="replace")


def looks_binary(body: bytes) -> bool:
    """A NUL byte early on: what ``file`` and git take as the sign of a binary (UTF-16 text has a BOM)."""
    head = body[:SNIFF_BYTES]
    return b"\0" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def _codec(label: str) -> str | None:
    label = label.strip().lower()
    label = _WHATWG.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None
