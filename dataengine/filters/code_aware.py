"""Code-aware judging of web pages: the prose rules see the prose, the code rules see the code blocks.

The English and Chinese rules were written for web prose, where a curly bracket means JavaScript junk and a
repeated line means boilerplate; in documentation they are a code example.  With ``pipeline.code_aware`` on,
a web page's prose rules judge its text with the code blocks (``code_spans``) masked out, while the blocks stay
in the text; a page that is mostly code (``code_share`` above ``pipeline.code_page_share``) is judged by the
code rules on its blocks instead, so junk JavaScript, minified code or template noise inside ``<pre>`` is still
rejected as it is in a source file.  The verdict ``code_aware: false`` would have given is kept beside it
(``code_aware_change``) where the two differ, so the report can show what the switch changes.
"""

from __future__ import annotations

import difflib
import re
from itertools import accumulate

import pyarrow as pa

from dataengine.extract.spans import Edit, Span

# Per judged row where the two chains disagree: each verdict (a ``stage:reason`` or ``kept``) and the view the
# code-aware rules judged (``prose`` or ``code``); null elsewhere.
CODE_AWARE_CHANGE = "code_aware_change"
CHANGE_TYPE = pa.struct([pa.field(name, pa.string()) for name in ("code_blind", "code_aware", "view")])
BLANK_RUNS = re.compile(r"\n{3,}")


def prose_view(text: str, spans: list[Span]) -> str:
    """The text with its code blocks taken out; where a block stood there is at most one empty line (a
    paragraph break), so the line and paragraph rules count no lines the page does not have."""
    if not spans:
        return text
    parts, prev = [], 0
    for start, end in spans:
        parts.append(text[prev:start])
        prev = end
    parts.append(text[prev:])
    return BLANK_RUNS.sub("\n\n", "".join(parts)).strip("\n")


def code_view(text: str, spans: list[Span]) -> str:
    """The code blocks alone, one after the other: what the code rules judge on a page that is mostly code."""
    return "\n".join(text[start:end] for start, end in spans)


def text_edits(old: str, new: str) -> list[Edit]:
    """The edits that turn ``old`` into ``new``, for moving code spans through a rule's text edit (``remap``).

    Lines are compared first: removed lines (boilerplate) are edits of their own, and a line changed in place
    keeps every offset when its length is unchanged (OpenCC's t2s maps each character to one character).  A
    line whose length changed (a phrase rewritten to a shorter one, as ``tw2sp`` does) is compared character by
    character, so a span starting or ending in it still lands on the same character.
    """
    if old == new:
        return []
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)  # together they partition each text
    if len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b, strict=True)):
        return []
    starts = [0, *accumulate(map(len, a))]
    edits: list[Edit] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:  # lines changed in place
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                if len(a[i]) != len(b[j]):
                    edits += _char_edits(a[i], b[j], starts[i])
            continue
        edits.append((starts[i1], starts[i2], sum(len(line) for line in b[j1:j2])))
    return edits


def _char_edits(old: str, new: str, offset: int) -> list[Edit]:
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [(offset + i1, offset + i2, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]
