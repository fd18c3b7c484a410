"""A small corpus the tests make themselves, with bad inputs mixed in.

English pages come from the licence texts Debian ships (/usr/share/common-licenses), code from the running
Python's standard library committed into a real git repository, Chinese pages from sentences written here.
Every bad input is there to be counted: a truncated gzip, a WARC with an HTTP 404 and an image, malformed
JSON lines, a binary ``.py``, invalid UTF-8, an oversized file, a symlink, an exact duplicate page.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import shutil
import subprocess
import sysconfig
from pathlib import Path

import yaml
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

LICENSES = Path("/usr/share/common-licenses")
STDLIB = Path(sysconfig.get_paths()["stdlib"])

ZH_SENTENCES = [
    "数据的质量和多样性对于预训练语言模型同样重要。",
    "我们从网页、中文语料和开源代码中收集文本，并进行清洗和去重。",
    "在训练之前，需要把文档切分成词元，并按照比例混合不同来源的数据。",
    "代码数据可以帮助模型学习严谨的逻辑结构和逐步推理的能力。",
    "重复的网页会浪费计算资源，因此去重是数据处理中的关键步骤。",
    "语言识别模型用于判断每篇文档的语言，并过滤掉不符合要求的页面。",
    "研究人员希望通过对比实验，了解代码比例如何影响推理能力。",
    "这个工具在本地集群上运行，也可以连接到已有的分布式集群。",
    "每一篇被丢弃的文档都会记录原因，以便之后检查过滤规则是否合理。",
    "评估集中的题目不能出现在训练数据里，否则结果就失去了意义。",
    "中文文本需要按字符统计长度，因为词与词之间没有空格。",
    "繁体字和简体字的转换可以让同一内容只出现一次。",
]

CODE_DIRS = ["json", "email", "http", "urllib", "logging", "concurrent/futures"]


def _page(title: str, paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
        f"<main><article><h1>{title}</h1>\n{body}\n</article></main>"
        f"<footer>Generated for tests</footer></body></html>"
    )


def english_pages() -> list[tuple[str, str]]:
    """(name, html) pages: each licence cut into chunks of paragraphs."""
    pages = []
    for lic in sorted(LICENSES.iterdir()):
        if lic.is_symlink() or not lic.is_file():
            continue
        paras = [p.strip().replace("\n", " ") for p in lic.read_text(errors="replace").split("\n\n") if p.strip()]
        for i in range(0, len(paras), 12):
            chunk = paras[i : i + 12]
            if sum(len(p) for p in chunk) > 800:
                pages.append((f"{lic.name}-{i // 12}.html", _page(f"{lic.name} part {i // 12}", chunk)))
    return pages


# Notes of the jsonl source: plain text on another subject, so that near-dedup keeps them apart from the pages.
NOTE_SENTENCES = [
    "今天早上下了一场小雨，空气变得格外清新。",
    "公园里的老人在湖边打太极拳，动作缓慢而有力。",
    "图书馆新到了一批关于历史和地理的书籍。",
    "周末我们计划去郊外爬山，顺便拍一些照片。",
    "厨房里飘出饺子的香味，全家人围坐在桌旁。",
    "地铁站的人流在晚高峰时达到了一天中的顶点。",
]


def chinese_pages(n: int) -> list[tuple[str, str]]:
    """Pages of six different sentences: no page repeats one (that is spam to the filters), and two pages share
    half their sentences on average, so that most are not near-duplicates of each other."""
    rng = random.Random(7)
    pages = []
    for i in range(n):
        chosen = rng.sample(ZH_SENTENCES, 6)
        pages.append((f"zh-{i:03d}.html", _page(f"中文文档 {i}", ["".join(chosen[:3]), "".join(chosen[3:])])))
    return pages


def chinese_notes(n: int) -> list[str]:
    rng = random.Random(8)
    return ["\n".join(rng.sample(NOTE_SENTENCES, len(NOTE_SENTENCES))) for _ in range(n)]


def _warc(path: Path, records: list[tuple[str, str, str, bytes]]) -> None:
    with path.open("wb") as f:
        writer = WARCWriter(f, gzip=True)
        for url, status, ctype, body in records:
            headers = StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers)
            )


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_code_repo(repo: Path) -> None:
    """A real git repository: stdlib modules plus a binary .py, invalid UTF-8, a huge file and a symlink."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for sub in CODE_DIRS:
        for src in sorted((STDLIB / sub).glob("*.py")):
            dest = repo / "lib" / sub / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    (repo / "lib" / "blob.py").write_bytes(b"\x7fELF\x00\x00binary" * 100)
    (repo / "lib" / "latin1.py").write_bytes("# caf\xe9 = 'd\xe9j\xe0 vu'\nprint('hello world')\n".encode("latin-1"))
    (repo / "lib" / "huge.py").write_text("x = 1\n" * 60_000)
    (repo / "lib" / "link.py").symlink_to("json/__init__.py")
    (repo / "README.md").write_text("# test repo\n\nnot code\n")
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {repo.parent / 'HOOK_RAN'}\n")
    hook.chmod(0o755)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")


def make_corpus(root: Path) -> Path:
    """Write the corpus and a sources YAML under ``root``; return the YAML's path."""
    en = english_pages()
    (root / "site_en").mkdir(parents=True)
    for name, html in en[: len(en) // 2]:
        (root / "site_en" / name).write_text(html, encoding="utf-8")
    name, html = en[0]
    (root / "site_en" / "mirror").mkdir()
    (root / "site_en" / "mirror" / name).write_text(html, encoding="utf-8")  # an exact duplicate
    (root / "site_en" / "short.html").write_text(_page("Short", ["Too short."]), encoding="utf-8")
    (root / "site_en" / "empty.html").write_text("", encoding="utf-8")

    (root / "site_zh").mkdir()
    for name, html in chinese_pages(40):
        (root / "site_zh" / name).write_text(html, encoding="utf-8")
    (root / "site_zh" / "untranslated.html").write_text(en[1][1], encoding="utf-8")  # English in the zh site

    (root / "warc").mkdir()
    records = [
        (f"http://example.test/{n}", "200 OK", "text/html; charset=utf-8", h.encode()) for n, h in en[len(en) // 2 :]
    ]
    records.append(("http://example.test/missing", "404 Not Found", "text/html", b"<html>not found</html>"))
    records.append(("http://example.test/logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64))
    _warc(root / "warc" / "crawl-00.warc.gz", records)
    good = (root / "warc" / "crawl-00.warc.gz").read_bytes()
    (root / "warc" / "crawl-01.warc.gz").write_bytes(good[: len(good) // 2])  # truncated mid-record

    (root / "jsonl").mkdir()
    lines = [json.dumps({"content": t, "url": f"http://notes.test/{i}"}) for i, t in enumerate(chinese_notes(3))]
    lines += ["{not json", json.dumps({"title": "no content field"})]
    (root / "jsonl" / "notes.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    (root / "jsonl" / "broken.jsonl.gz").write_bytes(gzip.compress(b'{"content": "x"}\n' * 50)[:40])

    make_code_repo(root / "repo")

    sources = {
        "sources": [
            # a base URL keeps ids (url + content hash), and so the held-out slice, the same in every temp dir
            {
                "name": "web_en",
                "kind": "html_dir",
                "lang": "en",
                "paths": [{"path": "site_en", "base_url": "http://en.test/"}],
            },
            {"name": "crawl_en", "kind": "warc", "lang": "en", "paths": ["warc/*.warc.gz"]},
            {
                "name": "web_zh",
                "kind": "html_dir",
                "lang": "zh",
                "paths": [{"path": "site_zh", "base_url": "http://zh.test/"}],
            },
            {
                "name": "notes_zh",
                "kind": "jsonl",
                "lang": "zh",
                "paths": ["jsonl/*.jsonl.gz"],
                "text_field": "content",
                "url_field": "url",
            },
            {
                "name": "code",
                "kind": "git",
                "paths": [{"path": "repo", "meta": {"repo": "example/stdlib", "license": "PSF-2.0"}}],
            },
        ]
    }
    path = root / "sources.yaml"
    path.write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    return path


def write_mix(root: Path, sources_yaml: Path, **overrides: object) -> Path:
    """A mix over the test corpus with a small vocabulary and small shards (several shards per build)."""
    mix = {
        "name": "testmix",
        "sources": str(sources_yaml),
        "shares": {"code": 0.3, "web_en": 0.3, "crawl_en": 0.19, "web_zh": 0.2, "notes_zh": 0.01},
        "total_tokens": "auto",
        "max_epochs": 4,
        "held_out": 0.05,
        "seed": 0,
        "pipeline": {
            "vocab_size": 2000,
            "tokenizer_sample_bytes": 2_000_000,
            "shard_tokens": 50_000,
            "max_file_bytes": 200_000,
        },
    }
    mix.update(overrides)
    path = root / f"{mix['name']}.yaml"
    path.write_text(yaml.safe_dump(mix, allow_unicode=True), encoding="utf-8")
    return path
