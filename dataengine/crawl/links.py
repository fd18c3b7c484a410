"""Outlinks of an HTML page, resolved against its ``<base href>``, and its ``<link rel=canonical>``.

Only navigational links are followed (``a``, ``area``, ``frame``, ``iframe``): images, scripts and styles are
not documents.  Links are normalised here, in the worker, so the driver only does set look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lxml.etree
import lxml.html

from dataengine.crawl.urls import BadUrl, normalize

_TAGS = {"a": "href", "area": "href", "frame": "src", "iframe": "src"}
_PARSER = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, no_network=True)


@dataclass
class Links:
    outlinks: list[str] = field(default_factory=list)  # normalised, unique, in page order
    canonical: str | None = None
    base: str | None = None  # the <base href>, when the page has one
    invalid: list[str] = field(default_factory=list)  # links that are not URLs at all (counted as skipped)


def extract_links(text: str, url: str, sort_query: bool = False) -> Links:
    """Links of the page at ``url`` whose decoded text is ``text``."""
    try:
        root = lxml.html.fromstring(text.encode("utf-8", "surrogatepass"), parser=_PARSER)
    except (lxml.etree.ParserError, ValueError):
        return Links()  # an empty or unparseable document has no links
    if root is None:
        return Links()
    links = Links()
    base = url
    for el in root.iter("base"):
        href = el.get("href")
        if href:
            try:
                base = links.base = normalize(href, url)
            except BadUrl:
                pass
            break
    seen: set[str] = set()
    for el in root.iter(*_TAGS, "link"):
        tag = el.tag
        if tag == "link":
            if links.canonical is None and "canonical" in (el.get("rel") or "").lower().split() and el.get("href"):
                try:
                    links.canonical = normalize(el.get("href"), base, sort_query)
                except BadUrl:
                    pass  # a canonical hint we cannot use; it names no page to fetch
            continue
        target = el.get(_TAGS[tag])
        if not target or target.startswith("#"):
            continue
        try:
            link = normalize(target, base, sort_query)
        except BadUrl:
            links.invalid.append(target.strip())
            continue
        if link not in seen:
            seen.add(link)
            links.outlinks.append(link)
    return links
