"""Basic document rules for natural-language text (English and Chinese).

English uses datatrove's Gopher quality filter (the reference thresholds of FineWeb); the length and CJK
rules are one-liners we keep here because they work on characters, which suits Chinese too.
"""

from __future__ import annotations

import re

from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")


class MinLength:
    """Documents shorter than ``min_chars`` (non-whitespace characters) carry too little to learn from."""

    def __init__(self, min_chars: int = 200) -> None:
        self.min_chars = min_chars

    def __call__(self, text: str) -> str | None:
        return "too_short" if len(text) - sum(c.isspace() for c in text) < self.min_chars else None


class CjkRatio:
    """Chinese pages whose share of CJK characters (among non-space characters) is below ``min_ratio``."""

    def __init__(self, min_ratio: float = 0.3) -> None:
        self.min_ratio = min_ratio

    def __call__(self, text: str) -> str | None:
        chars = len(text) - sum(c.isspace() for c in text)
        if chars == 0:
            return "low_cjk_ratio"
        return "low_cjk_ratio" if len(CJK.findall(text)) / chars < self.min_ratio else None


class GopherQuality:
    """datatrove's ``GopherQualityFilter``; every keyword argument is one of its thresholds."""

    def __init__(self, **thresholds: object) -> None:
        self.filter = GopherQualityFilter(**thresholds)

    def __call__(self, text: str) -> str | None:
        result = self.filter.filter(Document(text=text, id=""))
        if result is True:
            return None
        return result[1] if isinstance(result, tuple) else "gopher_quality"
