"""Text that is full of NUL bytes yet not binary: UTF-16/32 (with a byte-order mark, or UTF-16 without one).

Windows tools write UTF-16 pages and sources; a NUL-byte test alone would reject them as ``binary``.
"""

from __future__ import annotations

import codecs

# UTF-32 first: its little-endian mark begins with UTF-16's.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_wide(raw: bytes) -> str | None:
    """The text of a UTF-16/32 file, else None (not such a file, or not decodable as one).

    Without a byte-order mark, UTF-16 is recognised by the NUL bytes of mostly-Latin text: over 30% of the
    odd (little-endian) or even (big-endian) bytes, and almost none of the others.
    """
    for bom, codec in BOMS:
        if raw.startswith(bom):
            return _strict(raw[len(bom) :], codec)
    sample = raw[:4096]
    half = len(sample) // 2
    if half < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.3 * half and even < 0.02 * half:
        return _strict(raw, "utf-16-le")
    if even > 0.3 * half and odd < 0.02 * half:
        return _strict(raw, "utf-16-be")
    return None


def _strict(raw: bytes, codec: str) -> str | None:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text


def stray_nuls(raw: bytes) -> bool:
    """True when the NUL bytes of ``raw`` are a few strays in UTF-8 text (a broken CMS), not a binary file."""
    sample = raw[:65536]
    nuls = sample.count(0)
    if not nuls or nuls > len(sample) // 100:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample.replace(b"\0", b""), final=False)
    except UnicodeDecodeError:
        return False
    return True
