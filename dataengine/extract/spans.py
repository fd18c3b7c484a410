"""Code-block spans of a document: character ranges of its text, kept beside the text rather than as markers in it.

A span is ``(start, end)``, offsets in code points into ``text`` (what Python's ``str`` slicing and Arrow's
``utf8_slice_codeunits`` count), sorted and non-overlapping.  They are stored in the record's ``code_spans``
column, never in the text, so the tokenizer never sees them.  A stage that edits text must carry them through
its edits (``remap``).
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from dataengine.schema import CODE_SPANS

Span = tuple[int, int]
# (start, end, new_length): the text's [start, end) was replaced by new_length characters
Edit = tuple[int, int, int]


def take_markers(text: str, open_mark: str, close_mark: str, blank_mark: str) -> tuple[str, list[Span]]:
    """The text without its marker characters, and the spans the open/close markers enclosed.

    A line that held only open/close markers goes with them (the extractor drops empty lines, so the unmarked
    page would not have had it); a line that held only ``blank_mark`` is an empty line of a code block that the
    extractor would have dropped, and stays, empty.  An unpaired marker is dropped and makes no span; spans lose
    leading and trailing line breaks and empty spans are dropped.
    """
    lines: list[str] = []
    spans: list[Span] = []
    offset = 0  # where the next kept line starts in the output
    start: int | None = None
    marks = (open_mark, close_mark, blank_mark)
    for line in text.split("\n"):
        if not any(m in line for m in marks):  # most lines: kept as they are
            lines.append(line)
            offset += len(line) + 1
            continue
        kept: list[str] = []
        column = 0
        skip_space = False
        for char in line:
            if char == open_mark:
                start = start if start is not None else offset + column
            elif char == close_mark:
                if start is not None:
                    spans.append((start, offset + column))
                start = None
            elif char != blank_mark and not (skip_space and char == " "):
                kept.append(char)
                column += 1
            # a marker between two spaces (a block flattened into a line) would leave a double space
            skip_space = char in marks and bool(kept) and kept[-1] == " "
        if skip_space:  # ... or a trailing one
            kept.pop()
            column -= 1
            spans = [(a, min(b, offset + column)) for a, b in spans]
        if kept or not any(c in (open_mark, close_mark) for c in line):
            lines.append("".join(kept))
            offset += column + 1
    out = "\n".join(lines)
    return out, _tidy(out, spans)


def restore_lines(text: str, spans: list[Span], blocks: list[str]) -> tuple[str, list[Span]]:
    """Spans whose whitespace the extractor folded get back the source block's text, on lines of their own.

    trafilatura trims the whitespace of a ``<pre>`` that it reads inside a list item, a definition or a table
    cell: the block's lines and its runs of spaces become single spaces and it runs on with the prose around it
    (1,525 of the 4,577 multi-line blocks of Python 3.11's HTML documentation lost their line breaks).  The words
    come through intact, so the page's block with the same words (``blocks``, as the parser read them) replaces
    the span; blocks with the same words but different spacing are taken in order when the text has as many
    spans with those words, else left alone.  A span on lines of its own with as many line breaks as its block
    is left as it is: only folded blocks change, and pages without them stay byte for byte.
    """
    by_words: dict[str, list[str]] = {}
    for block in blocks:
        by_words.setdefault(" ".join(block.split()), []).append(block)
    words = [" ".join(text[start:end].split()) for start, end in spans]
    spans_with = Counter(words)
    seen: Counter[str] = Counter()
    pieces: list[str] = []
    moved: list[Span] = []
    size = 0  # characters in ``pieces``
    last = 0  # where the text not yet copied starts
    break_after = False  # the last piece is a restored block, which the next text must not continue on its line

    def put(piece: str) -> None:
        nonlocal size
        if piece:
            pieces.append(piece)
            size += len(piece)

    def put_between(between: str, break_before: bool, at_end: bool = False) -> None:
        if break_after:
            between = between.lstrip(" \t")
            if (between or not at_end) and not between.startswith("\n"):
                between = "\n" + between
        if break_before:
            between = between.rstrip(" \t")
            if (pieces or between) and not (between or pieces[-1]).endswith("\n"):
                between += "\n"
        put(between)

    for (start, end), key in zip(spans, words, strict=True):
        folded, same = text[start:end], by_words.get(key, [])
        block = same[0] if len(set(same)) == 1 else same[seen[key]] if len(same) == spans_with[key] else None
        seen[key] += 1
        own_lines = text[start - 1 : start] in ("", "\n") and text[end : end + 1] in ("", "\n")
        restore = block not in (None, folded) and (block.count("\n") > folded.count("\n") or not own_lines)
        put_between(text[last:start], restore)
        put(block if restore else folded)
        moved.append((size - len(block if restore else folded), size))
        break_after, last = restore, end
    put_between(text[last:], False, at_end=True)
    return "".join(pieces), moved


def _tidy(text: str, spans: list[Span]) -> list[Span]:
    tidy: list[Span] = []
    for start, end in spans:
        end = min(end, len(text))
        while start < end and text[start] == "\n":
            start += 1
        while end > start and text[end - 1] == "\n":
            end -= 1
        if end > start and not (tidy and start < tidy[-1][1]):
            tidy.append((start, end))
    return tidy


def normalize_whitespace(text: str, spans: list[Span]) -> tuple[str, list[Span]]:
    """Whitespace-only lines emptied and runs of empty lines made one, outside code spans (kept verbatim).

    Extracted pages carry the HTML's indentation as lines of tabs and spaces; line-level rules (Gopher's
    duplicated-line fraction) would count them as repeated lines.  Empty lines at either end are dropped.
    """
    lines = text.split("\n")
    starts = [0] * len(lines)
    for i in range(1, len(lines)):
        starts[i] = starts[i - 1] + len(lines[i - 1]) + 1
    in_code = _lines_in_code(starts, lines, spans)
    out: list[str] = []
    prose_blank = True  # the last line out is an emptied prose line (or nothing is out yet)
    trailing = 0  # how many lines at the end of ``out`` are emptied prose lines
    new_starts: dict[int, int] = {}  # old line index -> its start in the output
    offset = 0
    for i, line in enumerate(lines):
        blank = not in_code[i] and not line.strip()
        if blank and prose_blank:
            continue
        new_starts[i] = offset
        out.append("" if blank else line)
        offset += len(out[-1]) + 1
        prose_blank = blank
        trailing = trailing + 1 if blank else 0
    del out[len(out) - trailing :]
    moved = []
    for start, end in spans:
        a, b = _line_of(starts, start), _line_of(starts, end - 1)
        moved.append((new_starts[a] + start - starts[a], new_starts[b] + end - starts[b]))
    return "\n".join(out), moved


def _lines_in_code(starts: list[int], lines: list[str], spans: list[Span]) -> list[bool]:
    in_code = [False] * len(lines)
    for start, end in spans:
        for i in range(_line_of(starts, start), _line_of(starts, end - 1) + 1):
            in_code[i] = True
    return in_code


def _line_of(starts: list[int], position: int) -> int:
    """Index of the line holding ``position`` (binary search over line starts)."""
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= position:
            lo = mid
        else:
            hi = mid - 1
    return lo


def remap(spans: list[Span], edits: list[Edit]) -> list[Span]:
    """Spans moved through ``edits`` (sorted, non-overlapping, in the old text's offsets).

    A span end inside an edited range moves to the end of its replacement, a start to its start, so a span
    keeps covering whatever replaced part of it; spans left empty are dropped.
    """
    if not edits:
        return spans

    def move(position: int, is_end: bool) -> int:
        shift = 0
        for start, end, new_length in edits:
            if end <= position and not (is_end and start == end == position):
                shift += new_length - (end - start)
            elif start < position:  # inside this edit
                return start + shift + (new_length if is_end else 0)
            else:
                break
        return position + shift

    moved = [(move(s, False), move(e, True)) for s, e in spans]
    return [(s, e) for s, e in moved if e > s]


def code_share(text: str | None, spans: list[Span]) -> float:
    """Share of the text's characters inside code spans (0.0 for an empty or missing text)."""
    if not text:
        return 0.0
    return sum(e - s for s, e in spans) / len(text)


def spans_array(rows: list[list[Span]]) -> pa.Array:
    """Per-row spans as the record's ``code_spans`` column."""
    return pa.array([[{"start": s, "end": e} for s, e in row] for row in rows], CODE_SPANS)


def spans_of(column: pa.Array | pa.ChunkedArray) -> list[list[Span]]:
    """The record's ``code_spans`` column as per-row lists of ``(start, end)``."""
    return [[(d["start"], d["end"]) for d in row or []] for row in column.to_pylist()]
