"""A hostile-input corpus: every kind of bad input a crawl or a dump brings in, each as its own source.

One source per kind (the source is named after the kind), so the build's per-source funnel says exactly where
each input went: kept (out, held out or left out by the mix) or rejected with a reason.  Kept documents are
distinct licence paragraphs (English) or standard-library modules (code), handed out once, so that no two kinds
collide in dedup.  The big inputs (a 200 MB line, a 50 MB page, a 4 GiB decompression bomb) are written
streaming; repositories get hooks, filters and an fsmonitor that would create ``EXECUTED`` if git ran them.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sysconfig
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

LICENSES = Path("/usr/share/common-licenses")
# Licences whose texts do not overlap (GPL-1, LGPL-2 and GFDL-1.2 are near-duplicates of their successors).
DISTINCT_LICENSES = ("GPL-3", "MPL-1.1", "MPL-2.0", "GFDL-1.3", "LGPL-2.1", "GPL-2", "Apache-2.0", "Artistic", "LGPL-3")
STDLIB = Path(sysconfig.get_paths()["stdlib"])
MARKER = "EXECUTED"  # created by any repository hook or filter that runs
MIB = 1 << 20

Writer = Callable[[Path, "Pool"], dict[str, Any]]
KINDS: dict[str, Writer] = {}


def kind(fn: Writer) -> Writer:
    """Register a writer: ``fn(dir, pool)`` fills ``dir`` and returns its source entry (name and paths added)."""
    KINDS[fn.__name__] = fn
    return fn


class Pool:
    """Distinct documents to build hostile inputs around: each text or module is handed out once."""

    def __init__(self) -> None:
        self._texts = _licence_texts()
        self._modules = _stdlib_modules()

    def text(self) -> str:
        return next(self._texts)

    def page(self, text: str | None = None, charset: str = "utf-8") -> str:
        text = text or self.text()
        paras = "\n".join(f"<p>{p}</p>" for p in text.split("\n"))
        return (
            f"<!DOCTYPE html><html><head><meta charset='{charset}'><title>{text[:40]}</title></head><body>"
            f"<nav><a href='/'>Home</a></nav><main><article>\n{paras}\n</article></main>"
            "<footer>f</footer></body></html>"
        )

    def code(self) -> bytes:
        return next(self._modules).read_bytes()


def _licence_texts() -> Iterator[str]:
    for name in DISTINCT_LICENSES:
        paras = [" ".join(p.split()) for p in (LICENSES / name).read_text(errors="replace").split("\n\n")]
        chunk: list[str] = []
        for para in paras:
            if len(para) > 60 and sum(c.isalpha() or c.isspace() for c in para) > 0.9 * len(para):
                chunk.append(para)  # prose only: boxes of asterisks and section numbers fail Gopher's rules
            if sum(len(p) for p in chunk) > 1200:
                if sum(p.count(". ") + p.endswith(".") for p in chunk) >= 5:  # C4's rule wants 5 sentences
                    yield "\n".join(chunk)
                chunk = []


def _stdlib_modules() -> Iterator[Path]:
    for path in sorted(STDLIB.glob("*.py")):
        if 4000 < path.stat().st_size < 40_000 and max(map(len, path.read_text().splitlines())) < 200:
            yield path


# -- helpers ---------------------------------------------------------------------------------------------------
def html_source(**extra: Any) -> dict[str, Any]:
    return {"kind": "html_dir", "lang": "en", **extra}


def code_source() -> dict[str, Any]:
    return {"kind": "source_dir", "domain": "code"}


def jsonl_source() -> dict[str, Any]:
    return {"kind": "jsonl", "lang": "en", "text_field": "text", "url_field": "url"}


def warc_record(url: str, body: bytes, status: str = "200 OK", ctype: str = "text/html", gz: bool = True) -> bytes:
    """One WARC response record (a gzip member of its own when ``gz``)."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    headers = StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers))
    return buf.getvalue()


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    """Run git in ``repo`` with no user or system config, so the corpus is the same on every machine."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    done = subprocess.run(
        ["git", "-C", str(repo), *ident, *args], env=env, input=input, capture_output=True, check=True
    )
    return done.stdout.decode().strip()


def git_commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hostile")


def git_init(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    return repo


def git_source(repo: Path) -> dict[str, Any]:
    return {"kind": "git", "paths": [str(repo)]}


# -- html_dir ----------------------------------------------------------------------------------------------------
@kind
def html_zero_byte(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "empty.html").write_bytes(b"")
    return html_source()


@kind
def html_whitespace_only(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "blank.html").write_bytes(b" \n\t\r\n  \f " * 200)
    return html_source()


@kind
def html_invalid_utf8(d: Path, pool: Pool) -> dict[str, Any]:
    page = pool.page().encode().replace(b" the ", b" the\xff\xfe\x80 ")
    (d / "invalid.html").write_bytes(page)
    return html_source()


@kind
def html_utf16_bom(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "bom.html").write_bytes(pool.page(charset="utf-16").encode("utf-16"))  # BOM + native order
    return html_source()


@kind
def html_utf16_no_bom(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "le.html").write_bytes(pool.page(charset="utf-16").encode("utf-16-le"))
    (d / "be.html").write_bytes(pool.page(charset="utf-16").encode("utf-16-be"))
    return html_source()


@kind
def html_utf8_bom(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "bom8.html").write_bytes(b"\xef\xbb\xbf" + pool.page().encode())
    return html_source()


@kind
def html_mixed_encodings(d: Path, pool: Pool) -> dict[str, Any]:
    """UTF-8, Latin-1 and CP-1252 paragraphs in one page, as pages pasted together from several sites are."""
    text = pool.text().split("\n")
    parts = [p + " caf\u00e9 \u201cd\u00e9j\u00e0 vu\u201d" for p in text]
    encodings = ("utf-8", "latin-1", "cp1252")
    body = b"".join(b"<p>" + p.encode(encodings[i % 3], "replace") + b"</p>\n" for i, p in enumerate(parts))
    (d / "mixed.html").write_bytes(b"<html><head><meta charset='utf-8'><title>m</title></head><body>" + body)
    return html_source()


@kind
def html_wrong_charset(d: Path, pool: Pool) -> dict[str, Any]:
    page = pool.page(charset="shift_jis").replace(" the ", " th\u00e9 ")  # declared Shift-JIS, is UTF-8
    (d / "sjis.html").write_bytes(page.encode())
    return html_source()


@kind
def html_nul_bytes(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "nul.html").write_bytes(pool.page().encode().replace(b" and ", b" and\x00 "))
    return html_source()


@kind
def html_rtl_zero_width(d: Path, pool: Pool) -> dict[str, Any]:
    """Bidi overrides, zero-width spaces/joiners and an Arabic aside inside an English page (Trojan-source style)."""
    text = pool.text().replace(". ", ".\u200b \u200f").replace(", ", ",\u202e \u202c\u200d ")
    text += "\n\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u2067isolate\u2069 \ufeffend"
    (d / "rtl.html").write_bytes(pool.page(text).encode())
    return html_source()


@kind
def html_only_emoji(d: Path, pool: Pool) -> dict[str, Any]:
    emoji = " ".join("\U0001f600\U0001f389\U0001f680\U0001f525\u2764\ufe0f\U0001f44d\U0001f3fd" for _ in range(200))
    (d / "emoji.html").write_bytes(pool.page(emoji).encode())
    return html_source()


@kind
def html_deep_nesting(d: Path, pool: Pool) -> dict[str, Any]:
    depth = 10_000
    page = "<html><body>" + "<div>" * depth + pool.page() + "</div>" * depth + "</body></html>"
    (d / "deep.html").write_bytes(page.encode())
    return html_source()


@kind
def html_50mb(d: Path, pool: Pool) -> dict[str, Any]:
    para = ("<p>" + pool.text().replace("\n", "</p>\n<p>") + "</p>\n").encode()
    with (d / "big.html").open("wb") as f:
        f.write(b"<html><head><title>big</title></head><body>")
        for _ in range(50 * MIB // len(para) + 1):
            f.write(para)
        f.write(b"</body></html>")
    return html_source()


@kind
def html_binary(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "image.html").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64)
    return html_source()


@kind
def html_symlink_outside(d: Path, pool: Pool) -> dict[str, Any]:
    """A link out of the site to a readable page: reading through it would take in files outside the source."""
    outside = d.parent / "outside-the-site.html"
    outside.write_text(pool.page())
    (d / "escape.html").symlink_to(outside)
    (d / "passwd.html").symlink_to("/etc/passwd")
    return html_source()


@kind
def html_symlink_loop(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "a.html").symlink_to("b.html")
    (d / "b.html").symlink_to("a.html")
    return html_source()


@kind
def html_fifo(d: Path, pool: Pool) -> dict[str, Any]:
    """A named pipe called ``.html``: opening it for reading blocks until a writer comes, that is forever."""
    os.mkfifo(d / "pipe.html")
    return html_source()


@kind
def html_odd_names(d: Path, pool: Pool) -> dict[str, Any]:
    """A newline, non-Latin letters and bytes that are not UTF-8 in file names."""
    (d / "new\nline.html").write_text(pool.page())
    (d / "\u00fcn\u00efc\u00f6d\u00e9 \u540d\u524d.html").write_text(pool.page())
    Path(os.fsdecode(os.fsencode(d) + b"/latin1-\xe9t\xe9.html")).write_text(pool.page())
    return html_source(paths=[{"path": str(d), "base_url": "http://hostile.test/odd/"}])


# -- warc ----------------------------------------------------------------------------------------------------------
def _pages(pool: Pool, n: int, tag: str) -> list[bytes]:
    return [warc_record(f"http://hostile.test/{tag}/{i}", pool.page().encode()) for i in range(n)]


@kind
def warc_gz_corrupt_middle(d: Path, pool: Pool) -> dict[str, Any]:
    """Three gzip members; the middle one's deflate data is damaged (a bad disk sector)."""
    a, b, c = _pages(pool, 3, "gzmid")
    bad = bytearray(b)
    for i in range(40, len(bad) - 20, 7):
        bad[i] ^= 0x55
    (d / "mid.warc.gz").write_bytes(a + bytes(bad) + c)
    return {"kind": "warc", "lang": "en"}


@kind
def warc_corrupt_header_middle(d: Path, pool: Pool) -> dict[str, Any]:
    """An uncompressed WARC whose middle record has a header that is not WARC at all."""
    a = warc_record("http://hostile.test/hdr/0", pool.page().encode(), gz=False)
    c = warc_record("http://hostile.test/hdr/2", pool.page().encode(), gz=False)
    junk = b"\x00\x13GARBAGE not a header\r\nContent-Length: lots\r\n\r\n" + bytes(range(256)) + b"\r\n\r\n"
    (d / "hdr.warc").write_bytes(a + junk + c)
    return {"kind": "warc", "lang": "en"}


@kind
def warc_truncated(d: Path, pool: Pool) -> dict[str, Any]:
    a, b, c = _pages(pool, 3, "trunc")
    (d / "cut.warc.gz").write_bytes(a + b + c[: len(c) // 2])
    return {"kind": "warc", "lang": "en"}


@kind
def warc_zero_byte(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "empty.warc.gz").write_bytes(b"")
    return {"kind": "warc", "lang": "en"}


@kind
def warc_http_500(d: Path, pool: Pool) -> dict[str, Any]:
    ok = warc_record("http://hostile.test/500/ok", pool.page().encode())
    err = warc_record("http://hostile.test/500/err", b"<html>Internal Server Error</html>", "500 Internal Server Error")
    (d / "500.warc.gz").write_bytes(ok + err)
    return {"kind": "warc", "lang": "en"}


@kind
def warc_not_text(d: Path, pool: Pool) -> dict[str, Any]:
    png = warc_record("http://hostile.test/img.png", b"\x89PNG\r\n\x1a\n" + bytes(64), ctype="image/png")
    pdf = warc_record("http://hostile.test/doc.pdf", b"%PDF-1.7\n" + bytes(64), ctype="application/pdf")
    (d / "media.warc.gz").write_bytes(png + pdf)
    return {"kind": "warc", "lang": "en"}


# -- jsonl ---------------------------------------------------------------------------------------------------------
def _jline(pool: Pool, url: str) -> bytes:
    return json.dumps({"text": pool.text(), "url": url}).encode() + b"\n"


@kind
def jsonl_truncated_gzip(d: Path, pool: Pool) -> dict[str, Any]:
    """Five whole lines, then the archive ends in the middle of the sixth (a partial download)."""
    co = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip container
    data = b""
    for i in range(6):
        data += co.compress(_jline(pool, f"http://hostile.test/tgz/{i}")) + co.flush(zlib.Z_FULL_FLUSH)
        if i == 4:
            cut = len(data)
    (d / "cut.jsonl.gz").write_bytes(data[: cut + (len(data) - cut) // 2])
    return jsonl_source()


@kind
def jsonl_decompression_bomb(d: Path, pool: Pool) -> dict[str, Any]:
    """A ~4 MB gzip that inflates to 4 GiB of zeros: 4,096 copies of one fully flushed 1 MiB deflate block."""
    zeros = bytes(MIB)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    n, crc = 4096, 0
    with (d / "bomb.jsonl.gz").open("wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
        for _ in range(n):
            f.write(block)
            crc = zlib.crc32(zeros, crc)
        f.write(co.flush())
        f.write(struct.pack("<II", crc, (n * MIB) & 0xFFFFFFFF))
    return jsonl_source()


@kind
def jsonl_malformed_lines(d: Path, pool: Pool) -> dict[str, Any]:
    lines = [
        _jline(pool, "http://hostile.test/mal/0"),
        b"{not json\n",
        b'{"text": "unterminated\n',
        b'{"text": "bad utf-8 \xff\xfe"}\n',
        b"[1, 2, 3]\n",
        b'{"text": "x", "n": ' + b"7" * 5000 + b"}\n",  # over Python's 4,300-digit limit: a ValueError
        b"\n   \n",
        _jline(pool, "http://hostile.test/mal/1"),
    ]
    (d / "mal.jsonl").write_bytes(b"".join(lines))
    return jsonl_source()


@kind
def jsonl_deep_nesting(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "deep.jsonl").write_bytes(b"[" * 200_000 + b"]" * 200_000 + b"\n" + _jline(pool, "http://hostile.test/deep"))
    return jsonl_source()


@kind
def jsonl_text_not_string(d: Path, pool: Pool) -> dict[str, Any]:
    lines = [b'{"text": 12345}\n', b'{"text": ["a", "list"]}\n', b'{"text": {"nested": "x"}}\n']
    (d / "types.jsonl").write_bytes(b"".join(lines) + _jline(pool, "http://hostile.test/types/ok"))
    return jsonl_source()


@kind
def jsonl_lone_surrogate(d: Path, pool: Pool) -> dict[str, Any]:
    """A ``\\ud83d`` escape without its pair: valid JSON, but a string Arrow cannot hold."""
    line = json.dumps({"url": "http://hostile.test/surrogate", "text": pool.text()})
    (d / "surrogate.jsonl").write_text(line[:-2] + ' \\ud83d end"}\n')
    return jsonl_source()


@kind
def jsonl_200mb_line(d: Path, pool: Pool) -> dict[str, Any]:
    """One 200 MB line (written in 1 MiB pieces), then an ordinary line that must still be read."""
    piece = b"a" * MIB
    with (d / "long.jsonl").open("wb") as f:
        f.write(b'{"url": "http://hostile.test/long", "text": "')
        for _ in range(200):
            f.write(piece)
        f.write(b'"}\n')
        f.write(_jline(pool, "http://hostile.test/after-long"))
    return jsonl_source()


@kind
def jsonl_zero_byte(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "empty.jsonl").write_bytes(b"")
    (d / "empty.jsonl.gz").write_bytes(gzip.compress(b""))
    return jsonl_source()


@kind
def jsonl_whitespace_only(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "blank.jsonl").write_bytes(b"\n \n\t\r\n" * 100)
    return jsonl_source()


@kind
def jsonl_nul_in_text(d: Path, pool: Pool) -> dict[str, Any]:
    """An escaped NUL inside the text is valid JSON; a raw NUL byte inside a string is not."""
    escaped = json.dumps({"text": pool.text().replace(" of ", " of\u0000 ")}).encode()
    raw = b'{"text": "raw \x00 byte"}'
    (d / "nul.jsonl").write_bytes(escaped + b"\n" + raw + b"\n")
    return jsonl_source()


# -- parquet -------------------------------------------------------------------------------------------------------
@kind
def parquet_wrong_schema(d: Path, pool: Pool) -> dict[str, Any]:
    pq.write_table(pa.table({"content": [pool.text(), pool.text()]}), d / "wrong.parquet")
    return {"kind": "parquet", "lang": "en", "text_field": "text"}


@kind
def parquet_text_not_string(d: Path, pool: Pool) -> dict[str, Any]:
    pq.write_table(pa.table({"text": [1, 2, 3]}), d / "ints.parquet")
    return {"kind": "parquet", "lang": "en", "text_field": "text"}


@kind
def parquet_huge_row(d: Path, pool: Pool) -> dict[str, Any]:
    pq.write_table(pa.table({"text": [pool.text(), "word " * 400_000]}), d / "huge.parquet")
    return {"kind": "parquet", "lang": "en", "text_field": "text"}


@kind
def parquet_truncated(d: Path, pool: Pool) -> dict[str, Any]:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": [pool.text() for _ in range(3)]}), buf)
    (d / "cut.parquet").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return {"kind": "parquet", "lang": "en", "text_field": "text"}


@kind
def parquet_zero_byte(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "empty.parquet").write_bytes(b"")
    return {"kind": "parquet", "lang": "en", "text_field": "text"}


# -- source_dir ----------------------------------------------------------------------------------------------------
@kind
def code_binary_py(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "module.py").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 16)
    return code_source()


@kind
def code_zero_byte(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "empty.py").write_bytes(b"")
    return code_source()


@kind
def code_whitespace_only(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "blank.py").write_bytes(b"\n    \n\t\r\n" * 100)
    return code_source()


@kind
def code_invalid_utf8(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "latin1.py").write_bytes(pool.code() + "# caf\xe9 d\xe9j\xe0 vu\n".encode("latin-1"))
    return code_source()


@kind
def code_utf16_bom(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "bom16.py").write_bytes(pool.code().decode().encode("utf-16"))
    return code_source()


@kind
def code_utf16_no_bom(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "le16.py").write_bytes(pool.code().decode().encode("utf-16-le"))
    return code_source()


@kind
def code_crlf(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "dos.py").write_bytes(pool.code().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return code_source()


@kind
def code_nul_bytes(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "nul.py").write_bytes(pool.code().replace(b"\n", b"\n\x00", 1))
    return code_source()


@kind
def code_minified_js(d: Path, pool: Pool) -> dict[str, Any]:
    """One 900 KB line of minified JavaScript: under the size cap, a minified file by its name and its line."""
    stmts = (b"var a%d=function(b){return b*%d+a%d(b-1)};" % (i, i, i) for i in range(10**6))
    (d / "app.min.js").write_bytes(b"".join(stmts)[:900_000])
    return code_source()


@kind
def code_200mb_line(d: Path, pool: Pool) -> dict[str, Any]:
    """A 200 MB single-line source file (sparse on disk: it must be refused by size, never read)."""
    with (d / "huge.py").open("wb") as f:
        f.write(b"x = '")
        f.truncate(200 * MIB)
    return code_source()


@kind
def code_symlink_outside(d: Path, pool: Pool) -> dict[str, Any]:
    outside = d.parent / "outside-the-tree.py"
    outside.write_bytes(pool.code())
    (d / "escape.py").symlink_to(outside)
    return code_source()


@kind
def code_symlink_loop(d: Path, pool: Pool) -> dict[str, Any]:
    (d / "a.py").symlink_to("b.py")
    (d / "b.py").symlink_to("a.py")
    (d / "sub").mkdir()
    (d / "sub" / "loop").symlink_to("..", target_is_directory=True)  # a directory cycle
    return code_source()


@kind
def code_fifo(d: Path, pool: Pool) -> dict[str, Any]:
    os.mkfifo(d / "pipe.py")
    return code_source()


@kind
def code_rtl_trojan_source(d: Path, pool: Pool) -> dict[str, Any]:
    """Trojan Source (CVE-2021-42574): bidi overrides in a comment and a string of an otherwise normal module."""
    src = pool.code() + "\n# \u202e } \u2066if is_admin\u2069 \u2066 begin admins only\n".encode()
    (d / "trojan.py").write_bytes(src + 'access = "user\u202e \u2066# check\u2069 \u2066"\n'.encode())
    return code_source()


# -- git -----------------------------------------------------------------------------------------------------------
@kind
def git_symlink_loop(d: Path, pool: Pool) -> dict[str, Any]:
    repo = git_init(d / "repo")
    (repo / "a.py").symlink_to("b.py")
    (repo / "b.py").symlink_to("a.py")
    (repo / "ok.py").write_bytes(pool.code())
    git_commit_all(repo)
    return git_source(repo)


@kind
def git_submodule(d: Path, pool: Pool) -> dict[str, Any]:
    repo = git_init(d / "repo")
    (repo / "ok.py").write_bytes(pool.code())
    (repo / ".gitmodules").write_text('[submodule "vendor"]\n\tpath = vendor\n\turl = https://example.invalid/v.git\n')
    git(repo, "add", "-A")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'ab' * 20},vendor")  # a gitlink, no clone
    git(repo, "commit", "-q", "-m", "submodule")
    return git_source(repo)


@kind
def git_lfs_pointer(d: Path, pool: Pool) -> dict[str, Any]:
    repo = git_init(d / "repo")
    (repo / "ok.py").write_bytes(pool.code())
    (repo / ".gitattributes").write_text("*.py filter=lfs diff=lfs merge=lfs -text\n")
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'0' * 64}\nsize 123456\n"
    (repo / "model.py").write_text(pointer)
    git_commit_all(repo)
    return git_source(repo)


@kind
def git_dotdot_path(d: Path, pool: Pool) -> dict[str, Any]:
    """A tree made with ``git mktree`` holding ``..`` and ``.git`` entries, which a checkout would write outside."""
    repo = git_init(d / "repo")
    blob = git(repo, "hash-object", "-w", "--stdin", input=pool.code())
    evil = git(repo, "hash-object", "-w", "--stdin", input=b"import os\nos.system('touch EXECUTED')\n" * 10)
    sub = git(repo, "mktree", input=f"100644 blob {evil}\tescape.py\n".encode())
    hooks = git(repo, "mktree", input=f"100755 blob {evil}\tpost-checkout\n".encode())
    dotgit = git(repo, "mktree", input=f"040000 tree {hooks}\thooks\n".encode())
    top = f"040000 tree {sub}\t..\n040000 tree {dotgit}\t.git\n100644 blob {blob}\tok.py\n"
    commit = git(repo, "commit-tree", git(repo, "mktree", input=top.encode()), "-m", "dotdot")
    git(repo, "update-ref", "refs/heads/main", commit)
    return git_source(repo)


@kind
def git_hooks_and_filters(d: Path, pool: Pool) -> dict[str, Any]:
    """Hooks, a smudge/clean/process filter, a textconv and an fsmonitor that would each create EXECUTED."""
    repo = git_init(d / "repo")
    (repo / "ok.py").write_bytes(pool.code())
    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n")
    git_commit_all(repo)
    touch = f"touch '{d.parent / MARKER}'"
    for hook in (
        "post-checkout",
        "pre-commit",
        "post-merge",
        "reference-transaction",
        "pre-auto-gc",
        "post-index-change",
    ):
        path = repo / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\n{touch}\n")
        path.chmod(0o755)
    for key, value in (
        ("filter.evil.smudge", touch),
        ("filter.evil.clean", touch),
        ("filter.evil.process", touch),
        ("filter.evil.required", "true"),
        ("diff.evil.textconv", touch),
        ("core.fsmonitor", touch),
        ("core.pager", touch),
        ("core.sshCommand", touch),
    ):
        git(repo, "config", key, value)  # after the commit, so making the corpus runs none of them
    return git_source(repo)


@kind
def git_empty_tree(d: Path, pool: Pool) -> dict[str, Any]:
    repo = git_init(d / "repo")
    git(repo, "commit", "-q", "--allow-empty", "-m", "nothing")
    return git_source(repo)


@kind
def git_odd_names(d: Path, pool: Pool) -> dict[str, Any]:
    repo = git_init(d / "repo")
    (repo / "new\nline.py").write_bytes(pool.code())
    (repo / "\u00fcn\u00efc\u00f6d\u00e9_\u540d\u524d.py").write_bytes(pool.code())
    Path(os.fsdecode(os.fsencode(repo) + b"/latin1_\xe9t\xe9.py")).write_bytes(pool.code())
    git_commit_all(repo)
    return git_source(repo)


# -- the corpus ----------------------------------------------------------------------------------------------------
def make_hostile(root: Path) -> Path:
    """Write every kind under ``root/<kind>/`` plus a healthy source to mix, and a sources YAML; return its path."""
    pool = Pool()
    healthy = root / "healthy"
    healthy.mkdir(parents=True)
    for i in range(8):
        (healthy / f"page-{i}.html").write_text(pool.page())
    sources: list[dict[str, Any]] = [{"name": "healthy", "kind": "html_dir", "lang": "en", "paths": [str(healthy)]}]
    for name, write in KINDS.items():
        d = root / name
        d.mkdir()
        entry = write(d, pool)
        sources.append({"name": name, "paths": [str(d)], **entry})
    path = root / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}, allow_unicode=True), encoding="utf-8")
    return path


def write_hostile_mix(root: Path, sources_yaml: Path) -> Path:
    """Only the healthy source is mixed; a hostile document that survives every stage ends as ``mix:not_in_mix``."""
    mix = {
        "name": "hostile",
        "sources": str(sources_yaml),
        "shares": {"healthy": 1.0},
        "held_out": 0.05,
        "pipeline": {
            "vocab_size": 1000,
            "tokenizer_sample_bytes": 500_000,
            "shard_tokens": 50_000,
            "max_file_bytes": 1_000_000,
            "rejects_sample_per_reason": 1000,
        },
    }
    path = root / "hostile.yaml"
    path.write_text(yaml.safe_dump(mix, allow_unicode=True), encoding="utf-8")
    return path
