"""Code blocks of plain text and Markdown: fenced blocks (``` or ~~~) and indented blocks, as spans.

Fences follow CommonMark: an opening fence of three or more backticks or tildes indented at most three
spaces, closed by a fence of the same character at least as long (an unclosed fence runs to the end).
The span is the block's content, fences excluded.

Indented blocks follow CommonMark too (after a blank line, every line blank or indented four columns more),
measured from the text's usual indentation rather than from column 0: extracted web text often indents all
its prose (the HTML's own indentation), and those paragraphs are not code.
"""

from __future__ import annotations

import re
from collections import Counter

from dataengine.extract.spans import Span

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def markdown_spans(text: str) -> list[Span]:
    """Spans of the fenced and indented code blocks of ``text``, in order."""
    lines = text.split("\n")
    starts = [0] * len(lines)
    for i in range(1, len(lines)):
        starts[i] = starts[i - 1] + len(lines[i - 1]) + 1
    fenced = _fences(lines)
    in_fence = [False] * len(lines)
    for first, last in fenced:
        for i in range(max(first - 1, 0), min(last + 2, len(lines))):  # the fence lines too
            in_fence[i] = True
    blocks = fenced + _indented(lines, in_fence)
    spans = [(starts[first], starts[last] + len(lines[last])) for first, last in sorted(blocks) if first <= last]
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _fences(lines: list[str]) -> list[tuple[int, int]]:
    """``(first, last)`` content line of each fenced block (last < first for an empty block)."""
    blocks: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None or (match.group(1)[0] == "`" and "`" in match.group(2)):  # backticks in the info string
            i += 1
            continue
        fence = match.group(1)
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
        blocks.append((i + 1, end - 1))
        i = end + 1
    return blocks


def _indent(line: str) -> int:
    """Columns of leading whitespace (a tab advances to the next multiple of four)."""
    column = 0
    for char in line:
        if char == " ":
            column += 1
        elif char == "\t":
            column += 4 - column % 4
        else:
            break
    return column


def _indented(lines: list[str], in_fence: list[bool]) -> list[tuple[int, int]]:
    indents = Counter(
        _indent(line) for line, fenced in zip(lines, in_fence, strict=True) if line.strip() and not fenced
    )
    if not indents:
        return []
    base = max(indents.items(), key=lambda item: (item[1], -item[0]))[0]  # the usual indentation of the text

    def code(i: int) -> bool:
        return not in_fence[i] and bool(lines[i].strip()) and _indent(lines[i]) >= base + 4

    blocks: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if code(i) and (i == 0 or not lines[i - 1].strip()):
            last = i
            j = i + 1
            while j < len(lines) and not in_fence[j] and (code(j) or not lines[j].strip()):
                last = j if code(j) else last
                j += 1
            blocks.append((i, last))
            i = last + 1
        else:
            i += 1
    return blocks
