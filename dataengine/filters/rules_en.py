"""The English chain's rules (Gopher quality and repetition, C4, FineWeb) on one shared split per document.

Each rule is datatrove's filter ported line for line: it takes the same keyword arguments with the same
defaults (read from datatrove's own signature, so a threshold in our YAML means what it means in datatrove),
returns the same reason names, and reads the words, lines and n-grams of a :class:`TextSplit` instead of calling
spaCy itself.  The words are spaCy's own tokens (see ``text_split``), so the decisions are datatrove's; what
changes is that nothing is computed twice and the counting runs in numpy.  ``pipeline.english_rules:
datatrove`` runs datatrove's classes instead (``rules_text``).
"""

from __future__ import annotations

import re
from inspect import signature
from typing import Any

import numpy as np
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS
from datatrove.pipeline.filters.gopher_quality_filter import STOP_WORDS
from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
from datatrove.utils.text import TERMINAL_PUNCTUATION
from datatrove.utils.typeshelper import Languages

from dataengine.filters.text_split import TextSplit

PARAGRAPHS = re.compile(r"\n{2,}")
LINES = re.compile("\n+")


class SplitRule:
    """A rule that judges a :class:`TextSplit`; its keyword arguments are those of datatrove's ``peer`` filter."""

    peer: type[BaseFilter]
    needs_split = True

    def __init__(self, **params: Any) -> None:
        known = {k: p.default for k, p in signature(self.peer).parameters.items() if k != "exclusion_writer"}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; known: {', '.join(known)}")
        self.params = {**known, **params}
        if self.params["language"] not in (Languages.english, "en"):
            raise ValueError(
                f"language {self.params['language']!r}: the fast rules split English only "
                "(set pipeline.english_rules: datatrove)"
            )

    def __call__(self, text: str) -> str | None:
        return self.judge(TextSplit(text))

    def judge(self, split: TextSplit) -> str | None:
        raise NotImplementedError


class GopherQuality(SplitRule):
    """Gopher's quality rules (word counts and lengths, symbols, bullets, ellipses, stop words)."""

    peer = GopherQualityFilter

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        stop = self.params["stop_words"]
        self.stop_words = set(STOP_WORDS if stop is None else stop)

    def judge(self, split: TextSplit) -> str | None:
        p, text = self.params, split.text
        n_words = len(split.ids)
        if n_words == 0:  # datatrove divides by zero here; no words is a short document
            return "gopher_short_doc"
        is_word = split.is_word
        n_non_symbol = int(is_word.sum())
        if p["min_doc_words"] and n_non_symbol < p["min_doc_words"]:
            return "gopher_short_doc"
        if p["max_doc_words"] and n_non_symbol > p["max_doc_words"]:
            return "gopher_long_doc"
        avg = int(split.lengths[is_word].sum()) / n_non_symbol if n_non_symbol else float("nan")
        if p["min_avg_word_length"] and avg < p["min_avg_word_length"]:
            return "gopher_below_avg_threshold"
        if p["max_avg_word_length"] and avg > p["max_avg_word_length"]:
            return "gopher_above_avg_threshold"
        if p["max_symbol_word_ratio"] and text.count("#") / n_words > p["max_symbol_word_ratio"]:
            return "gopher_too_many_hashes"
        if p["max_symbol_word_ratio"] and (text.count("...") + text.count("…")) / n_words > p["max_symbol_word_ratio"]:
            return "gopher_too_many_ellipsis"
        lines = split.splitlines
        if p["max_bullet_lines_ratio"] and (
            sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines) > p["max_bullet_lines_ratio"]
        ):
            return "gopher_too_many_bullets"
        if p["max_ellipsis_lines_ratio"] and (
            sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines) > p["max_ellipsis_lines_ratio"]
        ):
            return "gopher_too_many_end_ellipsis"
        if p["max_non_alpha_words_ratio"] and int(split.has_alpha.sum()) / n_words < p["max_non_alpha_words_ratio"]:
            return "gopher_below_alpha_threshold"
        if p["min_stop_words"] and split.contains_words(self.stop_words) < p["min_stop_words"]:
            return "gopher_enough_stop_words"
        return None


class GopherRepetition(SplitRule):
    """Gopher's repetition rules: duplicate lines/paragraphs and repeated word n-grams."""

    peer = GopherRepetitionFilter

    def judge(self, split: TextSplit) -> str | None:
        p, text = self.params, split.text
        if not text:
            return "empty"
        paragraphs = PARAGRAPHS.split(text.strip())
        duplicates, chars = find_duplicates(paragraphs)
        if p["dup_para_frac"] and duplicates / len(paragraphs) > p["dup_para_frac"]:
            return "dup_para_frac"
        if p["dup_para_char_frac"] and chars / len(text) > p["dup_para_char_frac"]:
            return "dup_para_char_frac"
        lines = LINES.split(text)
        duplicates, chars = find_duplicates(lines)
        if p["dup_line_frac"] and duplicates / len(lines) > p["dup_line_frac"]:
            return "dup_line_frac"
        if p["dup_line_char_frac"] and chars / len(text) > p["dup_line_char_frac"]:
            return "dup_line_char_frac"
        for n, frac in p["top_n_grams"]:
            if len(split.ids) < n:
                continue
            if top_ngram_chars(split, n) / len(text) > frac:
                return f"top_{n}_gram"
        for n, frac in p["dup_n_grams"]:
            if repeated_ngram_chars(split, n) / len(text) > frac:
                return f"duplicated_{n}_n_grams"
        return None


def top_ngram_chars(split: TextSplit, n: int) -> int:
    """Characters of the most frequent word n-gram (words joined by spaces) times its count.

    Among n-grams equally frequent, the first to occur, as ``Counter.most_common`` picks it.
    """
    grams = split.ngrams(n)
    top = int(grams.counts.max())
    at = int(grams.first[grams.counts == top].min())
    return int(split.ngram_chars(n, 1)[at]) * top


def repeated_ngram_chars(split: TextSplit, n: int) -> int:
    """Characters of repeated word n-grams as datatrove's ``find_all_duplicate`` counts them (:func:`walk_repeats`)."""
    grams = split.ngrams(n)
    if len(grams.at) == 0 or grams.counts.max() == 1:
        return 0
    first_at = grams.first[grams.at]
    repeats = np.flatnonzero(first_at < np.arange(len(grams.at)))
    counted = walk_repeats(repeats, grams.at[repeats], first_at[repeats], n)
    return int(split.ngram_chars(n, 0)[counted].sum())


def walk_repeats(repeats: np.ndarray, grams: np.ndarray, firsts: np.ndarray, n: int) -> list[int]:
    """The positions among ``repeats`` (ascending; n-gram ``grams``, first seen at ``firsts``) that datatrove's
    ``find_all_duplicate`` counts.

    datatrove walks the words: an n-gram seen before counts its characters (words joined without spaces) and
    jumps n words ahead, unseen ones are remembered.  Only positions whose n-gram occurred earlier can count,
    so the walk visits just those: such a position counts if it is not inside a jump and an earlier occurrence
    of its n-gram was remembered (the first occurrence, unless a jump passed over it, or a later one visited).
    Positions of several documents walk together when gram ids differ between documents (a jump never leaves
    its document).
    """
    jumped = bytearray(int(repeats[-1]) + n + 1 if len(repeats) else 0)
    remembered: set[int] = set()
    counted: list[int] = []
    free = 0
    for i, gram, at in zip(repeats.tolist(), grams.tolist(), firsts.tolist(), strict=True):
        if i < free:
            continue
        if not jumped[at] or gram in remembered:
            counted.append(i)
            jumped[i + 1 : i + n] = b"\x01" * (n - 1)
            free = i + n
        else:
            remembered.add(gram)
    return counted


class C4Quality(SplitRule):
    """C4's page rules: lorem ipsum, curly brackets, fewer than 5 sentences in the lines C4 keeps.

    It only decides: datatrove's filter also drops lines (without terminal punctuation, mentioning javascript
    or cookies), and a silent edit would hide what it removed.
    """

    peer = C4QualityFilter

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not self.params["split_paragraph"]:
            raise ValueError("c4_quality: split_paragraph=False needs spaCy's sentences (set english_rules: datatrove)")

    def judge(self, split: TextSplit) -> str | None:
        p = self.params
        max_word, min_sentences = p["max_word_length"], p["min_num_sentences"]
        sentences = 0
        for line in split.splitlines:
            line = line.strip()
            words = line.split()
            if max_word != -1 and max(map(len, words), default=0) > max_word:
                continue
            if p["remove_citations"]:
                line = CITATION_REGEX.sub("", line)
            if p["filter_no_terminal_punct"] and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                continue
            if len(words) < p["min_words_per_line"]:
                continue
            lower = line.lower()
            if p["filter_lorem_ipsum"] and "lorem ipsum" in lower:
                return "lorem_ipsum"
            if p["filter_javascript"] and "javascript" in lower:
                continue
            if p["filter_curly_bracket"] and "{" in line:
                return "curly_bracket"
            if p["filter_policy"] and any(s in lower for s in POLICY_SUBSTRINGS):
                continue
            if min_sentences != -1 and sentences < min_sentences:  # past the minimum the count no longer matters
                sentences += split.tokenizer.sentences(line)
        return "too_few_sentences" if sentences < min_sentences else None


class FineWebQuality(SplitRule):
    """FineWeb's rules: lines ending in punctuation, short lines, duplicated line characters, list pages."""

    peer = FineWebQualityFilter

    def judge(self, split: TextSplit) -> str | None:
        p, text = self.params, split.text
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return "empty"
        stop_chars = tuple(TERMINAL_PUNCTUATION) if p["stop_chars"] is None else tuple(p["stop_chars"])
        ratio = sum(1 for line in lines if line.endswith(stop_chars)) / len(lines)
        if ratio < p["line_punct_thr"] and not (ratio == 0 and p["line_punct_exclude_zero"]):
            return "line_punct_ratio"
        ratio = sum(1 for line in lines if len(line) <= p["short_line_length"]) / len(lines)
        if ratio > p["short_line_thr"]:
            return "short_line_ratio"
        if find_duplicates(lines)[1] / len(text.replace("\n", "")) > p["char_duplicates_ratio"]:
            return "char_dup_ratio"
        if text.count("\n") / len(split.ids) > p["new_line_ratio"]:
            return "list_ratio"
        return None
