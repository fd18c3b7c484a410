"""Document rules for natural-language text: two character-level rules and datatrove's own English filters.

The English chain runs ``rules_en`` (the same rules on one shared split per document) unless a mix sets
``pipeline.english_rules: datatrove``: then these wrappers run datatrove's classes themselves (Gopher quality
and repetition, C4, FineWeb), each calling spaCy on its own.  The length and CJK rules work on characters,
which suits Chinese too.

Character statistics read a text as a numpy array of code points and look each one's class up in a table (a
flag byte per code point: whitespace, alphanumeric, punctuation, CJK), so counting costs no Python per character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
# a code point's flags: str.isspace(), str.isalnum(), a Unicode punctuation category (P*), matched by CJK
SPACE, ALNUM, PUNCT, CJK_CHAR = 1, 2, 4, 8
UNSEEN = 128


def code_points(text: str) -> np.ndarray:
    """The text's code points (uint32), one per character as ``len`` counts them."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


@lru_cache(maxsize=1)
def flag_table() -> np.ndarray:
    """Per code point its flags, filled in as characters are first met (a worker meets a few thousand)."""
    return np.full(0x110000, UNSEEN, np.uint8)


def flags_of(c: str) -> int:
    """The flags of one character, from the same ``str`` and ``unicodedata`` predicates the rules name."""
    return (
        SPACE * c.isspace()
        | ALNUM * c.isalnum()
        | PUNCT * unicodedata.category(c).startswith("P")
        | CJK_CHAR * (CJK.match(c) is not None)
    )


def char_flags(cps: np.ndarray) -> np.ndarray:
    """The flags of every code point of ``cps`` (a text's :func:`code_points`), in order."""
    table = flag_table()
    flags = table[cps]
    if (flags == UNSEEN).any():
        for cp in np.unique(cps[flags == UNSEEN]).tolist():
            table[cp] = flags_of(chr(cp))
        flags = table[cps]
    return flags


def count_flag(flags: np.ndarray, flag: int) -> int:
    """How many characters carry ``flag``."""
    return int(np.count_nonzero(flags & flag))


def text_bounds(texts: Sequence[str], sep: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of each text in the texts joined with ``sep`` characters between them, so that a whole
    batch is read as one code point array (:func:`code_points`) and counted per text (:func:`segment_sums`)."""
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    ends = np.cumsum(lengths + sep) - sep
    return ends - lengths, ends


def segment_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per segment ``[start, end)`` the sum of ``values`` (int64): one cumulative sum for every text of a batch,
    where a loop over the texts would cost a numpy call per text."""
    total = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    return total[ends] - total[starts]


class MinLength:
    """Documents shorter than ``min_chars`` (non-whitespace characters) carry too little to learn from."""

    def __init__(self, min_chars: int = 200) -> None:
        self.min_chars = min_chars

    def __call__(self, text: str) -> str | None:
        head = text[: 4 * self.min_chars]  # most documents reach the minimum early: no need to count the rest
        if len(head) < len(text) and sum(map(len, head.split())) >= self.min_chars:
            return None
        return "too_short" if sum(map(len, text.split())) < self.min_chars else None


class CjkRatio:
    """Chinese pages whose share of CJK characters (among non-space characters) is below ``min_ratio``."""

    def __init__(self, min_ratio: float = 0.3) -> None:
        self.min_ratio = min_ratio

    def __call__(self, text: str) -> str | None:
        flags = char_flags(code_points(text))
        chars = len(text) - count_flag(flags, SPACE)
        if chars == 0:
            return "low_cjk_ratio"
        return "low_cjk_ratio" if count_flag(flags, CJK_CHAR) / chars < self.min_ratio else None


class DatatroveRule:
    """One datatrove filter as a rule: keyword arguments are its thresholds, its reason is ours.

    The rule judges a copy of the document and never edits our text: C4's filter also drops lines
    (those without terminal punctuation, or mentioning javascript or cookies), and a silent edit would hide
    what it removed; here it only decides keep or drop from the lines it would keep.
    """

    filter_class: type[BaseFilter]
    default_reason: str

    def __init__(self, **thresholds: object) -> None:
        self.filter = self.filter_class(**thresholds)

    def __call__(self, text: str) -> str | None:
        result = self.filter.filter(Document(text=text, id=""))
        if result is True:
            return None
        return result[1] if isinstance(result, tuple) else self.default_reason


class DatatroveGopherQuality(DatatroveRule):
    """Gopher's quality rules (word counts and lengths, symbols, bullets, ellipses, stop words)."""

    filter_class = GopherQualityFilter
    default_reason = "gopher_quality"


class DatatroveGopherRepetition(DatatroveRule):
    """Gopher's repetition rules: duplicate lines/paragraphs and repeated word n-grams."""

    filter_class = GopherRepetitionFilter
    default_reason = "gopher_repetition"


class DatatroveC4Quality(DatatroveRule):
    """C4's page rules: lorem ipsum, curly brackets, fewer than 5 sentences in the lines C4 keeps."""

    filter_class = C4QualityFilter
    default_reason = "c4_quality"


class DatatroveFineWebQuality(DatatroveRule):
    """FineWeb's rules: lines ending in punctuation, short lines, duplicated line characters, list pages."""

    filter_class = FineWebQualityFilter
    default_reason = "fineweb_quality"


DATATROVE_RULES: dict[str, type[DatatroveRule]] = {
    "gopher_quality": DatatroveGopherQuality,
    "gopher_repetition": DatatroveGopherRepetition,
    "c4_quality": DatatroveC4Quality,
    "fineweb_quality": DatatroveFineWebQuality,
}
