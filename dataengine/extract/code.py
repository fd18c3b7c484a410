"""Source files -> text: programming language from the file name, binary and undecodable files rejected."""

from __future__ import annotations

import posixpath

from dataengine.extract.encoding import decode_wide

# Extension (or exact file name) -> language, for the languages of the default corpus and the common ones
# of The Stack.  Data and config formats (json, yaml, toml, xml, csv) are not code: they are rejected as
# ``not_code`` here and can be admitted by adding them.
LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".go": "go",
    ".rs": "rust",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".java": "java", ".kt": "kotlin", ".scala": "scala", ".swift": "swift",
    ".rb": "ruby", ".php": "php", ".pl": "perl", ".pm": "perl", ".lua": "lua",
    ".sh": "shell", ".bash": "shell",
    ".cs": "csharp", ".fs": "fsharp", ".hs": "haskell", ".ml": "ocaml", ".r": "r", ".jl": "julia",
    ".sql": "sql", ".s": "assembly", ".asm": "assembly", ".zig": "zig", ".nim": "nim", ".dart": "dart",
    ".el": "emacs-lisp", ".clj": "clojure", ".ex": "elixir", ".exs": "elixir", ".erl": "erlang",
    ".f90": "fortran", ".m": "objective-c", ".mm": "objective-cpp", ".vim": "vim", ".ps1": "powershell",
}  # fmt: skip
FILENAMES: dict[str, str] = {"makefile": "makefile", "dockerfile": "dockerfile", "cmakelists.txt": "cmake"}


def language_of(path: str) -> str | None:
    """The programming language of a file by its name, or None when it is not a known code file."""
    name = posixpath.basename(path).lower()
    if name in FILENAMES:
        return FILENAMES[name]
    return LANGUAGES.get(posixpath.splitext(name)[1])


def decode_code(raw: bytes, path: str) -> tuple[str | None, str | None, str | None]:
    """``(text, language, reject_reason)`` for one source file.

    A NUL byte means binary (git's rule), unless the file is UTF-16/32 text, which is decoded.
    """
    language = language_of(path)
    wide = decode_wide(raw) if b"\0" in raw[:8192] else None
    if wide is None and b"\0" in raw[:8192]:
        return None, language, "binary"
    if language is None:
        return None, None, "not_code"
    try:
        text = wide if wide is not None else raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, language, "invalid_utf8"
    if not text.strip():
        return None, language, "empty"
    return text, language, None
