"""The per-document implementations the vectorised rules replaced, kept as the reference they must equal.

``tests/test_filters.py`` compares each rule of ``rules_zh``, ``rules_code`` and ``rules_text`` with these on
documents just inside and just outside every threshold and on real pages; ``bench filters`` times them as the
"before" of the Chinese and code chains.  Each is the library's code as it was (character loops, ``Counter``,
datatrove's ``GopherRepetitionFilter`` with a character word tokenizer), one document per call: ``batched =
False`` keeps the quality stage from calling the batch methods they inherit.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.utils.word_tokenizers import WordTokenizer

from dataengine.filters.rules_code import GENERATED, CodeLines
from dataengine.filters.rules_text import CJK, CjkRatio, MinLength
from dataengine.filters.rules_zh import TERMINAL, WORD, OpenccT2S, ZhQuality, ZhRepetition

SPACE = re.compile(r"\s+")


class MinLengthReference(MinLength):
    def __call__(self, text: str) -> str | None:
        return "too_short" if sum(map(len, text.split())) < self.min_chars else None


class CjkRatioReference(CjkRatio):
    def __call__(self, text: str) -> str | None:
        chars = sum(map(len, text.split()))
        if chars == 0:
            return "low_cjk_ratio"
        return "low_cjk_ratio" if len(CJK.findall(text)) / chars < self.min_ratio else None


class CodeLinesReference(CodeLines):
    def __call__(self, text: str) -> str | None:
        lines = text.splitlines() or [""]
        lengths = list(map(len, lines))
        if max(lengths) > self.max_line_length:
            return "max_line_length"
        if sum(lengths) / len(lines) > self.max_avg_line_length:
            return "avg_line_length"
        if sum(map(str.isalnum, text)) / max(len(text), 1) < self.min_alnum_fraction:
            return "low_alnum_fraction"
        if GENERATED.search("\n".join(lines[: self.generated_header_lines])):
            return "auto_generated"
        return None


class OpenccT2SReference(OpenccT2S):
    batched = False

    def edit(self, text: str) -> tuple[str, dict[str, Any]]:
        converted = self.converter.convert(text)
        cjk = len(CJK.findall(text))
        if len(converted) == len(text):
            changed = sum(a != b for a, b in zip(text, converted, strict=True))
        else:
            changed = max(len(text), len(converted))
        script = "Hant" if cjk and changed / cjk >= self.min_changed else "Hans"
        return converted, {"zh_script": script}


def char_class(c: str) -> str:
    if CJK.match(c):
        return "cjk"
    if c.isalnum():
        return "alnum"
    return "punct" if unicodedata.category(c).startswith("P") else "symbol"


class ZhQualityReference(ZhQuality):
    batched = False

    def __call__(self, text: str) -> str | None:
        chars = SPACE.sub("", text)
        if self.min_chars is not None and len(chars) < self.min_chars:
            return "too_short"
        if not chars:
            return "too_short"
        counts = Counter(char_class(c) for c in chars)
        if self.min_cjk_ratio is not None and counts["cjk"] / len(chars) < self.min_cjk_ratio:
            return "low_cjk_ratio"
        if self.max_punct_ratio is not None and counts["punct"] / len(chars) > self.max_punct_ratio:
            return "punct_ratio"
        if self.max_symbol_ratio is not None and counts["symbol"] / len(chars) > self.max_symbol_ratio:
            return "symbol_ratio"
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        if self.min_avg_line_chars is not None and len(chars) / len(lines) < self.min_avg_line_chars:
            return "short_lines"
        ended = sum(line.endswith(TERMINAL) for line in lines) / len(lines)
        if self.min_line_punct_ratio is not None and ended < self.min_line_punct_ratio:
            return "line_punct_ratio"
        return None


class CharTokenizer(WordTokenizer):
    """datatrove word tokenizer for the Chinese n-gram rules: each CJK character a word, Latin/digit runs whole."""

    def __init__(self) -> None:
        super().__init__("zh")

    def word_tokenize(self, text: str) -> list[str]:
        return WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for s in re.split(r"(?<=[。！？!?])", text) if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        for sentence in self.sent_tokenize(text):
            start = text.index(sentence, start)
            spans.append((start, start + len(sentence)))
            start += len(sentence)
        return spans


def repeated_ngram_share_reference(text: str, n: int) -> float:
    chars = SPACE.sub("", text.lower())
    grams = Counter(chars[i : i + n] for i in range(len(chars) - n + 1))
    total = sum(grams.values())
    return sum(c for c in grams.values() if c > 1) / total if total else 0.0


class ZhRepetitionReference(ZhRepetition):
    batched = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.filter = GopherRepetitionFilter(
            dup_line_frac=self.dup_line_frac,
            dup_para_frac=self.dup_para_frac,
            dup_line_char_frac=self.dup_line_char_frac,
            dup_para_char_frac=self.dup_para_char_frac,
            top_n_grams=tuple(self.top_n_grams),
            dup_n_grams=tuple(self.dup_n_grams),
            language=CharTokenizer(),
        )

    def __call__(self, text: str) -> str | None:
        result = self.filter.filter(Document(text=text, id=""))
        if result is not True:
            return result[1] if isinstance(result, tuple) else "zh_repetition"
        share = self.max_repeated_ngram_share
        if share is not None and repeated_ngram_share_reference(text, self.repeated_ngram) > share:
            return "repeated_ngrams"
        return None


REFERENCES = {
    "min_length": MinLengthReference,
    "cjk_ratio": CjkRatioReference,
    "code_lines": CodeLinesReference,
    "opencc_t2s": OpenccT2SReference,
    "zh_quality": ZhQualityReference,
    "zh_repetition": ZhRepetitionReference,
}
