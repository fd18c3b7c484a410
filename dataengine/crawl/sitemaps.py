"""Sitemaps (sitemaps.org 0.9): the page URLs a site lists for crawlers, found through robots.txt ``Sitemap:``.

A site's link graph rarely reaches every page (LibreOffice's help has no index page at all); its sitemap
does.  Like the major crawlers, we read the sitemaps a host's robots.txt names, on that host only (a sitemap
may list only URLs under its own host, and a cross-host one needs verification we cannot do), follow sitemap
indexes, and hand every listed URL to the frontier, which applies scope, depth and robots rules as to any
link.  Sitemaps are site metadata like robots.txt: their requests are counted in the crawl report, not as
documents.  Parsing is by pattern, not by an XML parser: sitemaps in the wild are often malformed, and no
entity expansion can happen.
"""

from __future__ import annotations

import gzip
import html
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from dataengine.crawl.fetcher import Fetcher, FetchError
from dataengine.crawl.urls import BadUrl, normalize, origin

MAX_SITEMAPS = 100  # per host and robots.txt: index files included
MAX_BYTES = 50 * 2**20  # the protocol's limit on an uncompressed sitemap
MAX_URLS = 50_000 * 10  # per host: ten full sitemaps
_LOC = re.compile(rb"<(?:\w+:)?loc>\s*(.*?)\s*</(?:\w+:)?loc>", re.DOTALL)
_INDEX = re.compile(rb"<(?:\w+:)?sitemapindex[\s>]")


@dataclass
class SitemapResult:
    urls: list[str] = field(default_factory=list)  # normalised page URLs, in the order listed
    counts: Counter[str] = field(default_factory=Counter)  # fetched, urls, failed:<reason>, off_host, invalid


def parse(body: bytes) -> tuple[bool, list[str]]:
    """``(is_index, locations)`` of a sitemap or sitemap index; gzip bodies are decompressed (capped)."""
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body)
    locs = [html.unescape(m.decode("utf-8", "replace")) for m in _LOC.findall(body)]
    return bool(_INDEX.search(body[:4096])), locs


def _gunzip(body: bytes) -> bytes:
    """At most ``MAX_BYTES`` of a gzip body: a decompression bomb stops there instead of filling memory."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, MAX_BYTES)
    except zlib.error:
        try:
            return gzip.decompress(body[: 2**20])[:MAX_BYTES]
        except (OSError, EOFError, zlib.error):
            return b""


def read_sitemaps(
    fetcher: Fetcher, host: str, sitemaps: list[str], pace: Callable[[], float], sort_query: bool = False
) -> SitemapResult:
    """Fetch the sitemaps robots.txt named for ``host`` (an origin), follow indexes, and collect page URLs."""
    result = SitemapResult()
    queue, seen = list(sitemaps), set()
    while queue and result.counts["fetched"] + _failures(result.counts) < MAX_SITEMAPS:
        raw = queue.pop(0)
        try:
            url = normalize(raw)
        except BadUrl:
            result.counts["invalid"] += 1
            continue
        if url in seen:
            continue
        seen.add(url)
        if origin(url) != host:
            result.counts["off_host"] += 1
            continue
        try:
            response = fetcher.fetch(url, pace=pace, max_body=MAX_BYTES)
        except FetchError as e:
            result.counts[f"failed:{e.reason}"] += 1
            continue
        if not 200 <= response.status < 300:
            result.counts[f"failed:http_{response.status}"] += 1
            continue
        result.counts["fetched"] += 1
        is_index, locs = parse(response.body)
        if is_index:
            queue.extend(locs)
            continue
        for loc in locs:
            if len(result.urls) >= MAX_URLS:
                result.counts["over_limit"] += 1
                continue
            try:
                result.urls.append(normalize(loc, url, sort_query))
            except BadUrl:
                result.counts["invalid"] += 1
    result.counts["urls"] = len(result.urls)
    return result


def _failures(counts: Counter[str]) -> int:
    return sum(v for k, v in counts.items() if k.startswith("failed:"))
