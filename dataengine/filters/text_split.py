"""One split of an English document, shared by every rule of the English chain.

datatrove's English filters each call spaCy again on the same text (C4 once per line), which is about 80% of
the chain's time.  spaCy's tokenizer cuts text at whitespace and tokenizes every whitespace-free chunk on its
own (its own cache is keyed by chunk), so the words of a document are the concatenated tokens of its chunks.
Here each distinct chunk goes through spaCy's tokenizer once per worker and is remembered as token ids; a
document is then ``str.split`` plus dictionary look-ups, and the words are exactly spaCy's.  Each chunk also
remembers what spaCy's sentencizer sees in its tokens, so C4's sentence count needs no spaCy call either.

Token statistics the rules need (length, has a letter, is not only punctuation) are computed once per
distinct token and gathered per document with numpy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import chain

import numpy as np
from datatrove.utils.text import PUNCTUATION_SET

# what spaCy's sentencizer sees in a token: a sentence-ending character, other punctuation, anything else
SENT_END, PUNCT, OTHER = "s", "p", "w"
# a sentence starts at the first non-punctuation token after a sentence-ending one (spaCy's Sentencizer.predict)
SENTENCE_BREAK = re.compile(f"{SENT_END}[{SENT_END}{PUNCT}]*{OTHER}")
WHITESPACE_RUN = re.compile(r"(\s+)")
# every English infix consumes one of these (or a non-ASCII character); a suffix ending in an ASCII letter or
# digit is a unit after a number or ``'s``
ASCII_INFIX_CHARS = re.compile(r"[.,:<>=/+*^~-]")
ASCII_SUFFIX_HINT = re.compile(r"[0-9']")
# ASCII letters (or digits) with at most an opening bracket or quote before and a closing mark after, or letters
# ending in a lower-case one before a full stop: no English prefix, suffix or infix applies to them but those marks
SIMPLE_CHUNK = re.compile(r'([(\["]?)([A-Za-z]+|[0-9]+)([,;:!?)\]"]?)')
WORD_AND_STOP = re.compile(r'([(\["]?)([A-Za-z]*[a-z])(\.)')
MAX_CHUNKS = 1 << 18  # remembered chunks per worker (tens of MB) before the memory starts afresh


class ChunkTokenizer:
    """spaCy's tokenizer algorithm for one whitespace-free chunk, with spaCy's own English rules and expressions.

    A line-for-line port of ``Tokenizer._split_affixes``, ``_attach_tokens`` and ``_apply_special_cases``
    (spaCy 3.8) without the Doc, lexemes and caches around them, which cost several times the splitting itself.
    """

    def __init__(self) -> None:
        import spacy
        from spacy.attrs import IS_PUNCT, ORTH

        nlp = spacy.blank("en")
        tok = nlp.tokenizer
        self.is_punct = nlp.vocab.lex_attr_getters[IS_PUNCT]
        self.prefix_search, self.suffix_search = tok.prefix_search, tok.suffix_search
        self.infix_finditer, self.url_match = tok.infix_finditer, tok.url_match
        if tok.token_match is not None:
            raise ValueError("spaCy's English tokenizer has a token_match: this port no longer matches it")
        self.specials = {
            text: tuple(piece[ORTH] for piece in pieces) for text, pieces in tok.rules.items() if not text.isspace()
        }
        # specials that affix splitting can miss, with the token sequences the splitting leaves (spaCy's matcher)
        self.patterns = {
            text: tuple(self.split(text, specials=False))
            for text in self.specials
            if tok.find_prefix(text) or tok.find_infix(text) or tok.find_suffix(text)
        }
        self.longest = max(map(len, self.patterns.values()))
        self.heads = frozenset(pattern[0] for pattern in self.patterns.values())

    def __call__(self, chunk: str) -> list[str]:
        if chunk in self.specials:
            return list(self.specials[chunk])
        simple = SIMPLE_CHUNK.fullmatch(chunk) or WORD_AND_STOP.fullmatch(chunk)
        if simple:  # spaCy's loop on these splits off the two marks, looking each remainder up among special cases
            pre, core, suf = simple.groups()
            special = self.specials
            if pre and suf and core + suf in special:
                tokens = [pre, *special[core + suf]]
            elif pre and suf and pre + core in special:
                tokens = [*special[pre + core], suf]
            else:
                tokens = [pre] * bool(pre) + list(special.get(core, (core,))) + [suf] * bool(suf)
        else:
            tokens = self.split(chunk, specials=True)
        return self.apply_specials(tokens) if len(tokens) > 1 else tokens

    def split(self, string: str, specials: bool) -> list[str]:
        special = self.specials if specials else {}
        if string in special:
            return list(special[string])
        prefixes: list[str] = []
        suffixes: list[str] = []
        last = 0
        while string and len(string) != last:
            if string in special:
                break
            last = len(string)
            match = self.prefix_search(string)
            pre = match.end() - match.start() if match else 0
            if pre:
                prefix, minus_pre = string[:pre], string[pre:]
                if minus_pre and minus_pre in special:
                    string = minus_pre
                    prefixes.append(prefix)
                    break
            match = self.find_suffix(string[pre:])
            suf = match.end() - match.start() if match else 0
            if suf:
                suffix, minus_suf = string[-suf:], string[:-suf]
                if minus_suf and minus_suf in special:
                    string = minus_suf
                    suffixes.append(suffix)
                    break
            if pre and suf and pre + suf <= len(string):
                string = string[pre:-suf]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre:
                string = minus_pre
                prefixes.append(prefix)
            elif suf:
                string = minus_suf
                suffixes.append(suffix)
        tokens = prefixes
        if string:
            if string in special:
                tokens.extend(special[string])
            elif self.url_match(string):
                tokens.append(string)
            else:
                start = 0
                for match in self.find_infixes(string):
                    begin, end = match.start(), match.end()
                    if begin == 0:
                        continue
                    if begin != start:
                        tokens.append(string[start:begin])
                    if begin != end:
                        tokens.append(string[begin:end])
                    start = end
                if string[start:]:
                    tokens.append(string[start:])
        tokens.extend(reversed(suffixes))
        return tokens

    def find_suffix(self, string: str) -> re.Match | None:
        """spaCy's suffix search, skipped where it cannot match: an ASCII string ending in a digit, or in a letter
        with no digit (units follow numbers) and no apostrophe (``'s``) in it."""
        last = string[-1:]
        if string.isascii() and last.isalnum() and (last.isdigit() or not ASCII_SUFFIX_HINT.search(string)):
            return None
        return self.suffix_search(string)

    def find_infixes(self, string: str) -> list[re.Match]:
        """spaCy's infixes, skipped for an ASCII string without a character any English infix consumes."""
        if string.isascii() and not ASCII_INFIX_CHARS.search(string):
            return []
        return list(self.infix_finditer(string))

    def apply_specials(self, tokens: list[str]) -> list[str]:
        """Merge token runs that spell a special case: longest first, then leftmost, as spaCy's filter keeps them."""
        if self.heads.isdisjoint(tokens):
            return tokens
        found = []
        for i in range(len(tokens)):
            text = ""
            for j in range(i, min(i + self.longest, len(tokens))):
                text += tokens[j]
                if self.patterns.get(text) == tuple(tokens[i : j + 1]):
                    found.append((i, j + 1))
        if not found:
            return tokens
        seen: set[int] = set()
        kept = []
        for begin, end in sorted(found, key=lambda span: (span[0] - span[1], span[0])):
            if begin not in seen and end - 1 not in seen:
                kept.append((begin, end))
            seen.update(range(begin, end))
        out, at = [], 0
        for begin, end in sorted(kept):
            out.extend(tokens[at:begin])
            out.extend(self.specials["".join(tokens[begin:end])])
            at = end
        return out + tokens[at:]


class EnglishWords:
    """spaCy's English tokens of text, each distinct whitespace-free chunk tokenized once and remembered."""

    def __init__(self, max_chunks: int = MAX_CHUNKS) -> None:
        from spacy.pipeline import Sentencizer

        self.tokenize = ChunkTokenizer()
        self.sentence_ends = frozenset(Sentencizer.default_punct_chars)
        self.max_chunks = max_chunks
        self.reset()

    def reset(self) -> None:
        """Start afresh; splits made before keep the vocabulary they were made with."""
        self.vocab: dict[str, int] = {}
        self.tokens: list[str] = []  # per token id: the token
        self.chunk_ids: dict[str, tuple[int, ...]] = {}  # chunk -> its token ids
        self.chunk_codes: dict[str, str] = {}  # chunk -> what the sentencizer sees in each of its tokens
        self.codes: list[str] = []  # per token id: what the sentencizer sees in it
        self.lengths = np.zeros(1024, np.int64)  # per token id: characters
        self.words = np.zeros(1024, bool)  # per token id: not only punctuation (datatrove's "non-symbol word")
        self.alpha = np.zeros(1024, bool)  # per token id: has a letter

    def token_id(self, token: str) -> int:
        ident = self.vocab.get(token)
        if ident is None:
            ident = self.vocab[token] = len(self.vocab)
            self.tokens.append(token)
            if ident == len(self.lengths):
                self.lengths, self.words, self.alpha = (
                    np.resize(a, 2 * ident) for a in (self.lengths, self.words, self.alpha)
                )
            self.lengths[ident] = len(token)
            self.words[ident] = any(ch not in PUNCTUATION_SET for ch in token)
            self.alpha[ident] = any(ch.isalpha() for ch in token)
            self.codes.append(
                SENT_END if token in self.sentence_ends else PUNCT if self.tokenize.is_punct(token) else OTHER
            )
        return ident

    def learn(self, chunks: list[str]) -> None:
        """Tokenize the chunks not seen yet."""
        known = self.chunk_ids
        new = [c for c in chunks if c not in known]
        if not new:
            return
        if len(known) + len(new) > self.max_chunks:
            self.reset()
            known, new = self.chunk_ids, chunks
        codes = self.codes
        for chunk in new:
            if chunk not in known:
                ids = known[chunk] = tuple(map(self.token_id, self.tokenize(chunk)))
                self.chunk_codes[chunk] = "".join(codes[i] for i in ids)

    def ids(self, chunks: list[str]) -> np.ndarray:
        """Token ids of the chunks, in order."""
        try:  # most documents of a stream hold no new chunk: one pass
            return np.fromiter(chain.from_iterable(map(self.chunk_ids.__getitem__, chunks)), np.int64)
        except KeyError:
            self.learn(chunks)
            return np.fromiter(chain.from_iterable(map(self.chunk_ids.__getitem__, chunks)), np.int64)

    def sentences(self, line: str) -> int:
        """Sentences spaCy's sentencizer finds in a line (datatrove's ``split_into_sentences``).

        A whitespace run is a token of its own (neither punctuation nor a sentence end) unless it is one space
        after a chunk, which spaCy attaches to the token before it.
        """
        if not line:
            return 1  # datatrove's split of an empty text is one empty sentence
        parts = WHITESPACE_RUN.split(line)  # chunk, run, chunk, ..., chunk (the outer chunks may be empty)
        self.learn([p for p in parts[::2] if p])
        known = self.chunk_codes
        codes = "".join(
            (known[p] if p else "") if i % 2 == 0 else ("" if p == " " and parts[i - 1] else OTHER)
            for i, p in enumerate(parts)
        )
        return 1 + len(SENTENCE_BREAK.findall(codes))


@lru_cache(maxsize=1)
def english_words() -> EnglishWords:
    """The worker's tokenizer memory (one per process, as datatrove keeps one spaCy per process)."""
    return EnglishWords()


@dataclass(frozen=True)
class NGrams:
    """A document's word n-grams as dense ids: equal ids, equal n-grams."""

    at: np.ndarray  # per position, the id of the n-gram starting there
    first: np.ndarray  # per id, the first position where it occurs
    counts: np.ndarray  # per id, how often it occurs


class TextSplit:
    """A document's words, lines and paragraphs, each computed once, on first use, for every rule that reads it."""

    def __init__(self, text: str, words: EnglishWords | None = None) -> None:
        self.text = text
        self.tokenizer = words or english_words()
        self.vocab, self.tokens = self.tokenizer.vocab, self.tokenizer.tokens
        self._ngrams: dict[int, NGrams] = {}

    @cached_property
    def ids(self) -> np.ndarray:
        """Token ids of the words (spaCy's tokens without whitespace), in order."""
        return self.tokenizer.ids(self.text.split())

    def words(self) -> list[str]:
        """The words as strings (datatrove's ``split_into_words``)."""
        return [self.tokens[i] for i in self.ids.tolist()]

    @cached_property
    def lengths(self) -> np.ndarray:
        return self.tokenizer.lengths[self.ids]

    @cached_property
    def is_word(self) -> np.ndarray:
        """Per word: it has a character outside datatrove's punctuation set."""
        return self.tokenizer.words[self.ids]

    @cached_property
    def has_alpha(self) -> np.ndarray:
        return self.tokenizer.alpha[self.ids]

    @cached_property
    def splitlines(self) -> list[str]:
        return self.text.splitlines()

    def contains_words(self, words: set[str]) -> int:
        """How many of ``words`` occur among the document's words."""
        ids = [self.vocab[w] for w in words if w in self.vocab]
        return int(np.isin(np.asarray(ids, np.int64), self.ids).sum()) if ids else 0

    def ngrams(self, n: int) -> NGrams:
        """The document's word n-grams (none if it has fewer than ``n`` words), built from the (n-1)-grams."""
        if n not in self._ngrams:
            if n == 1:
                pairs = self.ids
            else:
                prev = self.ngrams(n - 1)
                if len(prev.at) and prev.counts.max() == 1:  # no repeated (n-1)-gram: no repeated n-gram
                    span = np.arange(max(len(prev.at) - 1, 0))
                    self._ngrams[n] = NGrams(span, span, np.ones(len(span), np.int64))
                    return self._ngrams[n]
                pairs = (prev.at[:-1] << 32) | self.ids[n - 1 :]
            _, first, at, counts = np.unique(pairs, return_index=True, return_inverse=True, return_counts=True)
            self._ngrams[n] = NGrams(at, first, counts)
        return self._ngrams[n]

    def ngram_chars(self, n: int, sep: int) -> np.ndarray:
        """Per position, the characters of the n-gram starting there, its words joined with ``sep`` characters."""
        ends = np.concatenate(([0], np.cumsum(self.lengths)))
        return ends[n:] - ends[: len(ends) - n] + sep * (n - 1)
