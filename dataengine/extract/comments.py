"""Comments and docstrings removed from source code, by language.

Why: the natural language inside code (comments, docstrings) is one explanation of why code helps a model reason
(it aligns text with program structure); a corpus with it removed, the code left working, tests that explanation
(the experiment's ``code-nocomments`` control).  It lives beside ``extract.code`` because it is a property of a
language's syntax, not of the experiment, and can serve any stage that needs code without its prose.

- Python: ``tokenize``'s COMMENT tokens, and docstrings as ``ast`` defines them (a string expression that is the
  first statement of a module, class or function; a body left empty gets ``pass``); every other string stays.
- C family (C, C++, Objective-C, Java, C#, JavaScript, TypeScript, Go, Rust, Kotlin, Scala, Swift, Dart): ``//``
  and ``/* */`` outside string and character literals, with each language's literals that could hide them: Go's
  raw strings, JS template literals (with nested ``${}`` code) and regular expressions, C++ raw strings, Rust's raw
  strings and lifetimes, C#'s verbatim strings, triple-quoted text blocks; nested block comments where the language
  nests them.
- Shell and YAML: ``#`` comments where ``#`` starts a word, outside quotes, here-documents and YAML block scalars.

A removed comment leaves no blank line where it stood alone, and a space where it separated two tokens.  Other
languages are left unchanged (``UNKNOWN``), as is Python that does not parse (``UNPARSED``).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

STRIPPED, UNKNOWN, UNPARSED = "stripped", "unknown_language", "unparsed"
Span = tuple[int, int, str]  # start, end, replacement


@dataclass(frozen=True)
class CSyntax:
    """What a C-family language's lexer must know to find its comments."""

    nested: bool = False  # /* /* */ */ nests
    char: str | None = None  # regex of a character literal at a quote ('), else ' opens a string
    multiline: bool = False  # "..." may span lines
    backtick: str | None = None  # "raw" (Go) or "template" (JS)
    triple: bool = False  # """...""" text blocks
    regex: bool = False  # /.../ regular expression literals (JS)
    prefixed: str | None = None  # regex of a prefixed raw/verbatim string opening at an identifier start
    splice: bool = False  # a backslash at a line's end continues a // comment (C's line splices)
    hashbang: bool = False  # a first line starting #! is a comment (JS)


C_CHAR = r"'(?:\\.|[^'\\\n])+'"
C_RAW = r'(?:u8|[uUL])?R"(?P<delim>[^()\\\s"]{0,16})\('  # C++ R"delim( ... )delim"
RUST_CHAR = r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F_]{1,8}\}|.)|[^'\\\n])'"  # one character: never a lifetime
RUST_RAW = r'b?r(?P<hashes>#*)"'
CS_VERBATIM = r'(?:\$@|@\$?)"'
JS = CSyntax(backtick="template", regex=True, hashbang=True)
C_FAMILY: dict[str, CSyntax] = {
    "c": CSyntax(char=C_CHAR, splice=True),
    "cpp": CSyntax(char=C_CHAR, prefixed=C_RAW, splice=True),
    "objective-c": CSyntax(char=C_CHAR, splice=True),
    "objective-cpp": CSyntax(char=C_CHAR, prefixed=C_RAW, splice=True),
    "java": CSyntax(char=C_CHAR, triple=True),
    "csharp": CSyntax(char=C_CHAR, prefixed=CS_VERBATIM),
    "javascript": JS,
    "typescript": JS,
    "go": CSyntax(char=C_CHAR, backtick="raw"),
    "rust": CSyntax(nested=True, char=RUST_CHAR, multiline=True, prefixed=RUST_RAW),
    "kotlin": CSyntax(nested=True, char=C_CHAR, triple=True),
    "scala": CSyntax(nested=True, char=C_CHAR, triple=True),
    "swift": CSyntax(nested=True, triple=True),
    "dart": CSyntax(nested=True, triple=True),
}
LANGUAGES = frozenset({"python", "shell", "yaml", *C_FAMILY})
JS_REGEX_AFTER = set("(,=:[!&|?{};~+-*%<>^") | {""}
JS_REGEX_KEYWORDS = frozenset("return typeof case do else in of new delete void throw yield await".split())
JS_REGEX = re.compile(r"/(?:\\.|\[(?:\\.|[^\]\\\n])*\]|[^/\\\n\[])+/")
DIGIT_SEPARATOR = re.compile(r"(?<![\w'])[0-9][0-9A-Za-z_']*\Z")  # C++14 1'000'000: no character literal
NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Stripped:
    text: str
    status: str  # STRIPPED, UNKNOWN or UNPARSED
    removed_chars: int  # characters of comments and docstrings removed


def strip_comments(text: str, lang: str | None) -> Stripped:
    """``text`` without its comments and docstrings, for a language of ``extract.code.LANGUAGES`` (or yaml)."""
    if lang == "python":
        spans = _python_spans(text)
        if spans is None:
            return Stripped(text, UNPARSED, 0)
    elif lang in C_FAMILY:
        spans = _c_spans(text, C_FAMILY[lang])
    elif lang == "shell":
        spans = _shell_spans(text)
    elif lang == "yaml":
        spans = _yaml_spans(text)
    else:
        return Stripped(text, UNKNOWN, 0)
    return Stripped(_remove(text, spans), STRIPPED, sum(end - start for start, end, _ in spans))


def _remove(text: str, spans: list[Span]) -> str:
    """``text`` with each span replaced; a line a removal left blank is dropped, and the whitespace before a
    removal at the end of a line goes with it.  A comment spanning lines leaves a line break (Go's semicolons and
    the preprocessor's directives need it); one between two tokens leaves a space."""
    mark = next(c for c in "\ue000\ue001\ue002\ue003\x00" if c not in text)
    pieces, pos = [], 0
    for start, end, repl in sorted(spans):
        if start < pos:  # a comment inside a removed docstring's parentheses
            continue
        if not repl:
            gap = start > 0 and not text[start - 1].isspace() and end < len(text) and not text[end].isspace()
            repl = "\n" if NEWLINE.search(text, start, end) else " " if gap else ""
        pieces += [text[pos:start], mark, repl, mark]
        pos = end
    pieces.append(text[pos:])
    lines = []
    for line in "".join(pieces).splitlines(keepends=True):
        if mark not in line:
            lines.append(line)
            continue
        body = line.rstrip("\r\n")
        body = re.sub(rf"[ \t]*{mark}(?:[ \t]*{mark})*[ \t]*\Z", "", body).replace(mark, "")
        if body.strip():
            lines.append(body + line[len(line.rstrip("\r\n")) :])
    return "".join(lines)


# -- Python -------------------------------------------------------------------------------------------------------
def _python_spans(text: str) -> list[Span] | None:
    """COMMENT tokens and docstrings; None when the code does not tokenize or parse (Python 2, a fragment)."""
    try:
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text, newline="").readline))
    except (SyntaxError, ValueError, tokenize.TokenError):
        return None
    starts = [0] + [m.end() for m in NEWLINE.finditer(text)]
    lines = NEWLINE.split(text)

    def offset(row: int, col: int, utf8: bool = False) -> int:
        return starts[row - 1] + (len(lines[row - 1].encode()[:col].decode()) if utf8 else col)

    spans: list[Span] = [(offset(*t.start), offset(*t.end), "") for t in tokens if t.type == tokenize.COMMENT]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0] if node.body else None
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            continue
        if not isinstance(first.value.value, str):
            continue
        start = offset(first.lineno, first.col_offset, utf8=True)
        end = offset(first.end_lineno or first.lineno, first.end_col_offset or 0, utf8=True)
        semicolon = re.compile(r"[ \t]*;[ \t]*").match(text, end)
        end = semicolon.end() if semicolon else end
        spans.append((start, end, "pass" if len(node.body) == 1 and not isinstance(node, ast.Module) else ""))
    return spans


# -- C family -----------------------------------------------------------------------------------------------------
def _c_spans(text: str, syn: CSyntax) -> list[Span]:
    """Comment spans found by a lexer that knows the language's literals (see ``CSyntax``)."""
    specials = [r"/[/*]?", '"', "'", "[{}]"] + (["`"] if syn.backtick else [])
    if syn.prefixed:
        specials.insert(0, rf"(?<![\w$]){syn.prefixed}")
    special = re.compile("|".join(specials))
    string = re.compile(r'"(?:\\.|[^"\\])*"' if syn.multiline else r'"(?:\\.|[^"\\\n])*"', re.S)
    char = re.compile(syn.char) if syn.char else re.compile(r"'(?:\\.|[^'\\\n])*'")
    template_text = re.compile(r"(?:\\.|[^`\\$]|\$(?!\{))*", re.S)
    spans: list[Span] = [(0, _line_end(text, 0, splice=False), "")] if syn.hashbang and text.startswith("#!") else []
    templates: list[int] = []  # JS: open ${ } depths, innermost last
    i, n = spans[0][1] if spans else 0, len(text)
    while True:
        m = special.search(text, i)
        if m is None:
            return spans
        tok, i = m.group(), m.start()
        if tok == "//":
            end = _line_end(text, i, splice=syn.splice)
            spans.append((i, end, ""))
            i = end
        elif tok == "/*":
            end = _block_end(text, i, syn.nested)
            spans.append((i, end, ""))
            i = end
        elif tok == "/":
            regex = JS_REGEX.match(text, i) if syn.regex and _regex_may_start(text, i) else None
            i = regex.end() if regex else i + 1
        elif tok == '"':
            if syn.triple and text.startswith('"""', i):
                close = re.compile(r'(?:\\.|[^\\])*?"""', re.S).match(text, i + 3)
                i = close.end() if close else n
            else:
                literal = string.match(text, i)
                i = literal.end() if literal else _line_end(text, i, splice=False)
        elif tok == "'":
            before = text[max(0, i - 64) : i]
            if syn.char == C_CHAR and DIGIT_SEPARATOR.search(before):
                i += 1
            else:
                literal = char.match(text, i)
                i = literal.end() if literal else i + 1 if syn.char else _line_end(text, i, splice=False)
        elif tok == "`" and syn.backtick == "raw":
            close = text.find("`", i + 1)
            i = n if close < 0 else close + 1
        elif tok == "`":
            i = _template_text(text, i + 1, template_text, templates)
        elif tok == "{":
            if templates:
                templates[-1] += 1
            i += 1
        elif tok == "}":
            if templates and templates[-1] == 0:
                templates.pop()
                i = _template_text(text, i + 1, template_text, templates)
            else:
                if templates:
                    templates[-1] -= 1
                i += 1
        else:  # a prefixed raw or verbatim string
            i = _prefixed_end(text, m)


def _line_end(text: str, i: int, splice: bool) -> int:
    """The end of the line at ``i`` (before its line break); with ``splice``, past lines ending in a backslash (C's
    line splices, which continue a ``//`` comment)."""
    while True:
        m = NEWLINE.search(text, i)
        if m is None:
            return len(text)
        if not (splice and text[m.start() - 1] == "\\"):
            return m.start()
        i = m.end()


def _block_end(text: str, i: int, nested: bool) -> int:
    if not nested:
        close = text.find("*/", i + 2)
        return len(text) if close < 0 else close + 2
    depth, j = 0, i
    for m in re.compile(r"/\*|\*/").finditer(text, i):
        depth += 1 if m.group() == "/*" else -1
        j = m.end()
        if depth == 0:
            return j
    return len(text)


def _regex_may_start(text: str, i: int) -> bool:
    """Whether a ``/`` at ``i`` can open a JS regular expression: where an expression starts, not after a value."""
    before = text[:i].rstrip()
    word = re.search(r"[A-Za-z_$][\w$]*\Z", before)
    if word:
        return word.group() in JS_REGEX_KEYWORDS
    return before[-1:] in JS_REGEX_AFTER


def _template_text(text: str, i: int, template_text: re.Pattern[str], templates: list[int]) -> int:
    """Past a JS template literal's text from ``i``: after its closing backtick, or into a ``${`` (pushed)."""
    j = template_text.match(text, i).end()  # type: ignore[union-attr]  # matches the empty string at worst
    if text.startswith("${", j):
        templates.append(0)
        return j + 2
    return min(j + 1, len(text))


def _prefixed_end(text: str, m: re.Match[str]) -> int:
    """The end of a raw (C++, Rust) or verbatim (C#) string opened by ``m``."""
    groups = m.groupdict()
    if "delim" in groups:
        close = f'){groups["delim"]}"'
    elif "hashes" in groups:
        close = '"' + groups["hashes"]
    else:
        verbatim = re.compile(r'(?:""|[^"])*"', re.S).match(text, m.end())
        return verbatim.end() if verbatim else len(text)
    end = text.find(close, m.end())
    return len(text) if end < 0 else end + len(close)


# -- shell and YAML -----------------------------------------------------------------------------------------------
SHELL_SPECIAL = re.compile(r"""#|\$'|'|"|\\.|<<<|<<-?[ \t]*(['"]?)([A-Za-z_][\w.-]*)\1|\n""", re.S)
SHELL_WORD_START = set(" \t\n;&|()<>")


def _shell_spans(text: str) -> list[Span]:
    """``#`` comments of a shell script: a ``#`` starting a word, outside quotes and here-documents."""
    spans: list[Span] = []
    heredocs: list[tuple[str, bool]] = []  # (delimiter, <<- strips tabs) opened on this line
    i, n = 0, len(text)
    while (m := SHELL_SPECIAL.search(text, i)) is not None:
        tok, i = m.group(), m.start()
        if tok == "#":
            if i == 0 or text[i - 1] in SHELL_WORD_START:
                end = _line_end(text, i, splice=False)
                spans.append((i, end, ""))
                i = end
            else:
                i += 1
        elif tok in ("'", "$'", '"'):
            quoted = {
                "'": r"'[^']*'",
                "$'": r"\$'(?:\\.|[^'\\])*'",
                '"': r'"(?:\\.|[^"\\])*"',
            }[tok]
            literal = re.compile(quoted, re.S).match(text, i)
            i = literal.end() if literal else n
        elif tok == "\n":
            i += 1
            for delimiter, tabs in heredocs:
                i = _heredoc_end(text, i, delimiter, tabs)
            heredocs = []
        else:
            if m.group(2):
                heredocs.append((m.group(2), tok.startswith("<<-")))
            i = m.end()
    return spans


def _heredoc_end(text: str, i: int, delimiter: str, tabs: bool) -> int:
    """Past the here-document whose body starts at ``i``: after its delimiter line (the end of text without one)."""
    tab = r"\t*" if tabs else ""
    pattern = rf"^{tab}{re.escape(delimiter)}[ \t]*(?:\r?\n|\Z)"
    close = re.compile(pattern, re.M).search(text, i)
    return close.end() if close else len(text)


YAML_BLOCK_SCALAR = re.compile(r"(?:^|[\s:])[|>][+-]?[0-9]?[+-]?[ \t]*\Z")


def _yaml_spans(text: str) -> list[Span]:
    """``#`` comments of a YAML document: a ``#`` at a line's start or after a space, outside quoted scalars
    (which start a value) and block scalars (the lines indented under ``|`` or ``>``)."""
    spans: list[Span] = []
    quote: str | None = None
    block: int | None = None  # indentation of the line that opened a block scalar
    pos = 0
    for line in text.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        body = line.rstrip("\r\n")
        indent = len(body) - len(body.lstrip(" "))
        if block is not None and (not body.strip() or indent > block):
            continue
        block, j, code_end = None, 0, len(body)
        while j < len(body):
            c = body[j]
            if quote == "'":  # '' is a quote inside
                quote = None if c == "'" and not body.startswith("''", j) else quote
                j += 2 if body.startswith("''", j) else 1
                continue
            if quote == '"':
                j, quote = (j + 2, quote) if c == "\\" else (j + 1, None if c == '"' else quote)
                continue
            if c == "#" and (j == 0 or body[j - 1] in " \t"):
                spans.append((start + j, start + len(body), ""))
                code_end = j
                break
            if c in "'\"" and (body[:j].strip() == "" or body[:j].rstrip()[-1] in ":-[{,?"):
                quote = c
            j += 1
        if quote is None and YAML_BLOCK_SCALAR.search(body[:code_end].rstrip()):
            block = indent
    return spans
