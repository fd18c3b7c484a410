"""Software licences as SPDX expressions: names from Debian and package metadata, licence files, SPDX headers.

Code is kept or dropped by its licence, so every code document's meta carries one SPDX expression under
``license`` (``NOASSERTION`` when nothing says) and ``license_from`` says who said it (``meta``, ``LICENSE``,
``spdx_header``).  The names arrive in three dialects -- Debian copyright short names (``Expat``, ``GPL-2+``,
``MIT or Apache-2.0``), the full text of a repository's LICENSE/COPYING file, and a source file's own
``SPDX-License-Identifier`` header -- and all three end up as one SPDX expression, so that one function
(``allowed``) judges them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from dataengine.config import SourceConfig

NOASSERTION = "NOASSERTION"
UNKNOWN: Mapping[str, str] = {"license": NOASSERTION}  # the meta fields of a document nothing licenses

# Licences that let code be copied into a training set and passed on with attribution only (no copyleft):
# The Stack's permissive set, as SPDX ids.
PERMISSIVE: frozenset[str] = frozenset(
    {
        "MIT", "MIT-0", "X11", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "Apache-2.0", "ISC", "Zlib", "BSL-1.0",
        "PSF-2.0", "Python-2.0", "Unlicense", "CC0-1.0", "LicenseRef-public-domain", "NCSA", "PostgreSQL", "curl",
        "Unicode-3.0", "Unicode-DFS-2016", "WTFPL", "HPND", "MIT-CMU",
    }
)  # fmt: skip

# SPDX ids given their proper case whatever case they arrive in (``mit``, ``apache-2.0``); the GNU family and
# BSD-N-Clause are parsed instead.
_CANONICAL = {
    spdx.lower(): spdx
    for spdx in PERMISSIVE
    | {
        NOASSERTION, "NONE", "MPL-1.1", "MPL-2.0", "EPL-1.0", "EPL-2.0", "CDDL-1.0", "EUPL-1.2", "Artistic-1.0",
        "Artistic-1.0-Perl", "Artistic-2.0", "OFL-1.1", "CC-BY-4.0", "CC-BY-SA-4.0", "OpenSSL",
    }
}  # fmt: skip
# Debian short names and package-metadata spellings that are not SPDX ids.
_ALIASES = {
    "expat": "MIT",
    "apache": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache software": "Apache-2.0",
    "boost": "BSL-1.0",
    "cc0": "CC0-1.0",
    "public-domain": "LicenseRef-public-domain",
    "public domain": "LicenseRef-public-domain",
    "psf": "PSF-2.0",
    "psf-2": "PSF-2.0",
    "python": "PSF-2.0",
    "python software foundation": "PSF-2.0",
    "mpl-2": "MPL-2.0",
    "artistic": "Artistic-1.0-Perl",  # Debian's /usr/share/common-licenses/Artistic is Perl's
    "artistic-2": "Artistic-2.0",
    "gpl": "GPL-1.0-or-later",  # Debian: "GPL" with no version means any version
    "lgpl": "LGPL-2.0-or-later",
}
# SPDX exception ids, and Debian's ``with X exception`` names for them.
_EXCEPTIONS = {
    "autoconf": "Autoconf-exception-generic",
    "bison": "Bison-exception-2.2",
    "classpath": "Classpath-exception-2.0",
    "font": "Font-exception-2.0",
    "gcc": "GCC-exception-3.1",
    "libtool": "Libtool-exception",
    "linux-syscall-note": "Linux-syscall-note",
    "llvm": "LLVM-exception",
}
_EXCEPTIONS |= {spdx.lower(): spdx for spdx in _EXCEPTIONS.values()}
_GNU_NAME = re.compile(r"(agpl|lgpl|gpl|gfdl)[ -]?v?(\d(?:\.\d)?)(\+|-or-later|-only)?", re.IGNORECASE)
_BSD_NAME = re.compile(r"bsd[ -](\d)-clause", re.IGNORECASE)
_DECORATION = re.compile(r"^the\s+|\s+licen[cs]e$", re.IGNORECASE)  # "The MIT License", "ISC License"
_WITH = re.compile(r"(.+?)\s+with\s+(.+)", re.IGNORECASE)
# Debian's DEP-5 ", and" / ", or": the comma closes a group ("A or B, and C" is "(A or B) and C").
_COMMA_OPERATOR = re.compile(r",\s*(and|or)\s+", re.IGNORECASE)
_SPLIT = re.compile(r"(\(|\)|\s+(?:or|and)\s+|\s*[|/,&]\s*)", re.IGNORECASE)
_OPERATORS = {"or": "OR", "|": "OR", "/": "OR", ",": "OR", "and": "AND", "&": "AND"}


@lru_cache(maxsize=4096)
def normalise(name: str) -> str:
    """The SPDX expression for a licence name or expression as Debian and package metadata write it.

    ``Expat`` -> ``MIT``, ``GPL-2+`` -> ``GPL-2.0-or-later``, ``MIT or Apache-2.0`` / ``Apache-2.0 | MIT`` /
    ``MIT/Apache-2.0`` -> ``MIT OR Apache-2.0``, ``GPL-2+ with Autoconf exception`` -> ``GPL-2.0-or-later WITH
    Autoconf-exception-generic``.  A name it does not know becomes ``LicenseRef-<name>``: it stays distinct, a
    filter can still list it, and the result is always a valid SPDX expression.  SPDX expressions come back
    unchanged, so normalising twice is harmless.  A missing or empty licence is the caller's to map to
    ``NOASSERTION`` (see ``declared``): there is no name to map.  Cached: a corpus holds few distinct names.
    """
    text = re.sub(r",\s*version", " version", " ".join(name.split()), flags=re.IGNORECASE)
    while m := _COMMA_OPERATOR.search(text):
        text = f"({text[: m.start()]}) {m[1]} {text[m.end() :]}"
    parts = []
    for token in _SPLIT.split(text):
        token = token.strip()
        if token in ("(", ")"):
            parts.append(token)
        elif token.lower() in _OPERATORS:
            parts.append(_OPERATORS[token.lower()])
        elif token:
            if " " in token and not _WITH.fullmatch(token) and not _known_id(token):
                return _licence_ref(name)  # prose ("Permission to use, copy, ..." in a License: line), not names
            parts.append(_term(token))
    expr = " ".join(parts).replace("( ", "(").replace(" )", ")")
    try:
        return _render(_parse(expr))  # one spelling per expression: no redundant parentheses
    except ValueError:  # unbalanced parentheses or a dangling operator: the whole name is one reference
        return _licence_ref(name)


def _render(node: _Node, inside: str | None = None) -> str:
    """An expression tree as SPDX text, parenthesised only where ``OR`` sits inside ``AND``."""
    if isinstance(node, str):
        return node
    op, operands = node
    text = f" {op} ".join(_render(o, op) for o in operands)
    return f"({text})" if inside == "AND" and op == "OR" else text


def _term(term: str) -> str:
    """One licence, perhaps ``with`` an exception."""
    m = _WITH.fullmatch(term)
    return f"{_licence_id(m[1])} WITH {_exception_id(m[2])}" if m else _licence_id(term)


def _exception_id(name: str) -> str:
    if name.startswith("AdditionRef-"):
        return name
    key = name.lower()
    short = key.removesuffix(" exception").removesuffix("-exception")
    return _EXCEPTIONS.get(key) or _EXCEPTIONS.get(short) or f"AdditionRef-{_clean(name)}"


def _licence_id(name: str) -> str:
    if name.startswith(("LicenseRef-", "DocumentRef-")):
        return name
    return _known_id(name) or _licence_ref(name)


def _known_id(name: str) -> str | None:
    """The SPDX id of one licence name, or None when it is not one this module knows."""
    name = _DECORATION.sub("", name) or name
    key = name.lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if key in _CANONICAL:
        return _CANONICAL[key]
    if m := _GNU_NAME.fullmatch(name):
        return _gnu_id(m[1].upper(), m[2], later=m[3] in ("+", "-or-later"))
    if m := _BSD_NAME.fullmatch(name):
        return f"BSD-{m[1]}-Clause"
    return None


def _gnu_id(family: str, version: str, later: bool) -> str:
    return f"{family}-{version if '.' in version else version + '.0'}-{'or-later' if later else 'only'}"


def _clean(name: str) -> str:
    """``name`` as an SPDX idstring: letters, digits, ``.`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-") or "unknown"


def _licence_ref(name: str) -> str:
    return f"LicenseRef-{_clean(name)}"


# -- SPDX expressions ---------------------------------------------------------------------------------------------
_Node = str | tuple[str, list[Any]]  # a licence id, or ("AND" | "OR", operands)
_SPDX_TOKEN = re.compile(r"\(|\)|[A-Za-z0-9.+:-]+")
_NOT_AN_ID = ("(", ")", "AND", "OR", "WITH")


class _Parser:
    """SPDX expression syntax: ``AND`` binds tighter than ``OR``, parentheses group, ``id WITH exception``.

    A leaf is a licence id, or ``id WITH exception`` as one string.
    """

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _SPDX_TOKEN.findall(expr)
        self.pos = 0
        if not self.tokens or "".join(self.tokens) != "".join(expr.split()):
            self.fail()

    def fail(self) -> NoReturn:
        raise ValueError(f"not an SPDX licence expression: {self.expr!r}")

    def peek(self) -> str:
        return self.tokens[self.pos].upper() if self.pos < len(self.tokens) else ""

    def take(self) -> str:
        if self.pos == len(self.tokens):
            self.fail()
        self.pos += 1
        return self.tokens[self.pos - 1]

    def tree(self) -> _Node:
        node = self.operation("OR")
        if self.pos != len(self.tokens):
            self.fail()
        return node

    def operation(self, op: str) -> _Node:
        operand = (lambda: self.operation("AND")) if op == "OR" else self.licence
        items = [operand()]
        while self.peek() == op:
            self.take()
            items.append(operand())
        return items[0] if len(items) == 1 else (op, items)

    def licence(self) -> _Node:
        token = self.take()
        if token == "(":
            node = self.operation("OR")
            if self.take() != ")":
                self.fail()
            return node
        if token.upper() in _NOT_AN_ID:
            self.fail()
        if self.peek() == "WITH":
            self.take()
            exception = self.take()
            if exception.upper() in _NOT_AN_ID:
                self.fail()
            return f"{token} WITH {exception}"
        return token


def _parse(expr: str) -> _Node:
    return _Parser(expr).tree()


def allowed(expr: str, allow: frozenset[str]) -> bool:
    """Whether the SPDX expression ``expr`` lets code be used under the licences in ``allow``.

    ``A OR B`` passes when either does (the user picks), ``A AND B`` only when both do (both bind), and
    ``A WITH exception`` as ``A`` does.  ``expr`` must be normalised (ids compare exactly); ``ValueError`` when it
    is not an SPDX expression.
    """

    def holds(node: _Node) -> bool:
        if isinstance(node, str):  # an exception grants more, never less: the licence decides
            return node.split(" WITH ", 1)[0] in allow
        op, operands = node
        return (any if op == "OR" else all)(holds(o) for o in operands)

    return holds(_parse(expr))


def permissive(expr: str) -> bool:
    """Whether a (normalised) expression is satisfied by permissive licences alone; False when it is not one."""
    try:
        return allowed(expr, PERMISSIVE)
    except ValueError:
        return False


# -- where a licence is written --------------------------------------------------------------------------------
_HEADER_LINES = 30
_HEADER_BYTES = 8192  # 30 lines of a source file, generously
_HEADER = re.compile(r"SPDX-License-Identifier:[ \t]*([A-Za-z0-9.+:() \t-]+)")
# A repository's licence file: LICENSE, LICENCE, COPYING, UNLICENSE, with no extension or a text one, or one of a
# dual licence's files (LICENSE-MIT and LICENSE-APACHE, as Rust crates ship them: group ``dual``).
LICENSE_FILE = re.compile(
    r"(?:(?:un)?licen[cs]e|copying)(?P<dual>[-_][a-z0-9-]+)?(?:\.(?:md|txt|rst|markdown))?", re.IGNORECASE
)


def spdx_header(text: str) -> str | None:
    """The normalised ``SPDX-License-Identifier: EXPR`` of the first 30 lines of a source file,
    or None when there is none or it is not an expression.  Comment closers after it (``*/``, ``-->``) are not
    part of it."""
    head = "\n".join(text.split("\n", _HEADER_LINES)[:_HEADER_LINES])
    m = _HEADER.search(head)
    if not m:
        return None
    expr = m[1].strip(" \t-")
    try:
        _parse(expr)
    except ValueError:
        return None
    return normalise(expr)


def declared(meta: Mapping[str, Any]) -> dict[str, str] | None:
    """The ``license``/``license_from`` meta fields for a licence a source declares in its own meta (the sample
    corpus sets it from Debian copyright files), as SPDX; None when it declares none."""
    value = meta.get("license")
    return {"license": normalise(str(value)), "license_from": "meta"} if value else None


def header_license(raw: bytes) -> dict[str, str]:
    """The ``license``/``license_from`` meta fields of a file whose SPDX header names its licence (a vendored or
    differently licensed file says so there, overriding its repository's licence); empty when it has none.

    Called on every source file, so the bytes are searched before any decoding.
    """
    head = raw[:_HEADER_BYTES]
    if b"SPDX-License-Identifier" not in head:
        return {}
    expr = spdx_header(head.decode("utf-8", "replace"))
    return {"license": expr, "license_from": "spdx_header"} if expr else {}


# -- licence texts ------------------------------------------------------------------------------------------------
_GNU_FAMILY = r"(general public|lesser general public|library general public|affero general public|free documentation)"
_GNU_FAMILIES = {
    "general public": "GPL",
    "lesser general public": "LGPL",
    "library general public": "LGPL",
    "affero general public": "AGPL",
    "free documentation": "GFDL",
}
_VERSION = r"(\d(?:\.\d)?)"
_BSD_WINDOW = 1500  # characters after BSD's opening sentence in which its clauses lie


def _bsd(m: re.Match[str], words: str) -> str:
    clauses = words[m.end() : m.end() + _BSD_WINDOW]
    if "all advertising materials mentioning" in clauses:
        return "BSD-4-Clause"
    return "BSD-3-Clause" if "endorse or promote" in clauses else "BSD-2-Clause"


def _artistic(m: re.Match[str], words: str) -> str:
    if m[1] == "2.0":
        return "Artistic-2.0"
    perl = "aggregation of this package with a commercial distribution" in words  # Perl's clause 8
    return "Artistic-1.0-Perl" if perl else "Artistic-1.0"


# Phrases found in one licence's text and no other's, on the text lowered with every run of characters other than
# letters, digits and dots made one space (so line breaks, markdown and quotes do not matter).  A file may append
# other licences (bundled code), so the licence whose phrase comes first is the file's.
_TEXT_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str], str], str]]] = [
    (re.compile(r"apache license version 2\.0"), "Apache-2.0"),
    (re.compile(r"version 2\.0 january 2004 https? www\.apache\.org licenses"), "Apache-2.0"),  # title line lost
    (
        re.compile(rf"gnu {_GNU_FAMILY} license (?:version |v){_VERSION}"),
        lambda m, _: _gnu_id(_GNU_FAMILIES[m[1]], m[2], later=False),
    ),
    (  # a notice rather than the licence: "under the terms of the GNU GPL ... either version 2 ... or any later"
        re.compile(
            rf"gnu {_GNU_FAMILY} license as published by the free software foundation (?:either )?version {_VERSION}"
            r"(?: of the license)?( or at your option any later version)?"
        ),
        lambda m, _: _gnu_id(_GNU_FAMILIES[m[1]], m[2], later=bool(m[3])),
    ),
    (re.compile(rf"mozilla public license (?:version |v\.? ?){_VERSION}"), lambda m, _: f"MPL-{m[1]}"),
    (re.compile(r"permission is hereby granted free of charge to any person obtaining a copy"), "MIT"),
    (re.compile(r"boost software license version 1\.0"), "BSL-1.0"),
    (re.compile(r"permission is hereby granted free of charge to any person or organization obtaining"), "BSL-1.0"),
    (
        re.compile(r"redistribution and use in source and binary forms with or without modification are permitted"),
        _bsd,
    ),
    (
        re.compile(
            r"permission to use copy modify and (?:or )?distribute this software for any purpose with or without fee"
            r" is hereby granted provided that"
        ),
        "ISC",
    ),
    (
        re.compile(
            r"permission to use copy modify and (?:or )?distribute this software for any purpose with or without fee"
            r" is hereby granted\.? the software is provided"
        ),
        "0BSD",
    ),
    (re.compile(r"this is free and unencumbered software released into the public domain"), "Unlicense"),
    (
        re.compile(r"permission is granted to anyone to use this software for any purpose including commercial"),
        "Zlib",
    ),
    (
        re.compile(
            r"permission to use copy modify and distribute this software and its documentation for any purpose and"
            r" without fee is hereby granted"
        ),
        "HPND",
    ),
    (re.compile(r"python software foundation license version 2"), "PSF-2.0"),
    (re.compile(r"license agreement is between the python software foundation"), "PSF-2.0"),
    (re.compile(r"cc0 1\.0 universal"), "CC0-1.0"),
    (re.compile(r"the artistic license (2\.0|preamble)"), _artistic),
]
_NOT_WORD = re.compile(r"[^a-z0-9.]+")
_NAME_ONLY_CHARS = 100


def from_license_text(text: str) -> str | None:
    """The SPDX id of a LICENSE/COPYING file's text, from phrases only that licence has; None when none is found.

    The full text of a GNU licence gives ``-only`` (the text alone does not say "or later"); a notice that says
    "or (at your option) any later version" gives ``-or-later``.  A file of one short line is read as a licence
    name (Ray's LICENSE.txt is "Apache 2.0").  Not a licence scanner: it names the licence a repository's licence
    file states, which is what the filter needs.
    """
    words = _NOT_WORD.sub(" ", text.lower())
    found = [(m.start(), rule, m) for pattern, rule in _TEXT_RULES if (m := pattern.search(words))]
    if found:
        _, rule, m = min(found, key=lambda f: f[0])
        return rule if isinstance(rule, str) else rule(m, words)
    lines = text.strip().splitlines()
    if len(lines) == 1 and len(lines[0]) <= _NAME_ONLY_CHARS:  # a file that only names its licence: "Apache 2.0"
        return _known_id(lines[0].strip())
    return None


def with_mix_licenses(sources: list[SourceConfig], licenses: str | list[str] | None) -> list[SourceConfig]:
    """The mix's ``licenses:`` given to every code source that sets none of its own."""
    if not licenses:
        return sources
    return [
        s.model_copy(update={"licenses": licenses}) if s.filter_domain == "code" and not s.licenses else s
        for s in sources
    ]
