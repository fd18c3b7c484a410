"""Benchmark inputs drawn from the embedded Debian sample corpus (fetched on first use)."""

from __future__ import annotations

import lxml.html

from dataengine.config import SourceConfig
from dataengine.extract.code import language_of
from dataengine.sources.files import expand
from dataengine.sources.sample import sample_sources


def sample_by_name() -> dict[str, SourceConfig]:
    """The sample's sources, web pages as files (``html_dir``)."""
    return {s.name: s for s in sample_sources(web="files")}


def page_paths(source: SourceConfig) -> list[str]:
    return [p for spec in source.path_specs() for p in expand(spec.path) if p.endswith((".html", ".htm"))]


def plain_texts(max_bytes: int) -> list[str]:
    """Real text of every domain: code files, then English and Chinese page text (tags stripped), interleaved."""
    sources = sample_by_name()
    pools: list[list[str]] = []
    code = []
    for spec in sources["code"].path_specs():
        for path in expand(spec.path):
            if language_of(path):
                try:
                    code.append(open(path, encoding="utf-8").read())
                except (UnicodeDecodeError, OSError):
                    continue
    pools.append(code)
    for name in ("web_en", "web_zh"):
        pages = []
        for path in page_paths(sources[name]):
            try:
                pages.append(lxml.html.parse(path).getroot().text_content())
            except (ValueError, OSError, AttributeError):
                continue
        pools.append(pages)
    texts, total, i = [], 0, 0
    while total < max_bytes and any(i < len(p) for p in pools):
        for pool in pools:
            if i < len(pool) and total < max_bytes:
                texts.append(pool[i])
                total += len(pool[i].encode())
        i += 1
    return texts
