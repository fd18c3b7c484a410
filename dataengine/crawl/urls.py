"""URL normalisation (one spelling per resource, so the seen-set dedups) and crawl scope.

Normalisation follows RFC 3986 section 6: scheme and host lower-cased, the default port dropped, dot
segments removed, percent-escapes upper-cased (and unreserved characters unescaped), the fragment dropped;
the query is sorted only when asked, since parameter order can matter to a server.
"""

from __future__ import annotations

import hashlib
import re
import string
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import tld

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL = 2048  # longer URLs are skipped (url_too_long), as most crawlers and servers do
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = _SAFE_PATH + "?"
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9/:@!$&'()*+,;=._~?-]")  # anything _encode may change ('%' included)


class BadUrl(ValueError):
    """A link that cannot be parsed as a URL (no host, bad port, bad IPv6 literal...)."""


def normalize(url: str, base: str | None = None, sort_query: bool = False) -> str:
    """The one spelling of ``url`` (resolved against ``base``) used as its identity in the crawl.

    A URL of another scheme (``mailto:``, ``file:``, ``data:``...) comes back resolved but otherwise as is,
    so that it can be counted as skipped; ``BadUrl`` when an http(s) URL cannot be parsed.
    """
    url = _TAB_NEWLINE.sub("", url.strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x1f"))
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            return url
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise BadUrl(f"{url[:200]!r}: {e}") from None
    if not host:
        raise BadUrl(f"{url[:200]!r}: no host")
    host = _idna(host.rstrip("."))
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = _encode(_remove_dot_segments(parts.path or "/"), _SAFE_PATH)
    query = parts.query
    if sort_query and query:
        query = "&".join(sorted(query.split("&")))
    return urlunsplit((scheme, netloc, path, _encode(query, _SAFE_QUERY), ""))


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def url_key(url: str) -> str:
    """The seen-set key: the URL itself, or for an overlong one (a ``data:`` URL) a prefix plus a hash."""
    if len(url) <= MAX_URL:
        return url
    return url[:MAX_URL] + "#sha1=" + hashlib.sha1(url.encode("utf-8", "surrogateescape")).hexdigest()


def origin(url: str) -> str:
    """``scheme://host[:port]``: the unit robots.txt and politeness apply to."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def hostname(url: str) -> str:
    return urlsplit(url).hostname or ""


def registrable_domain(host: str) -> str:
    """``docs.python.org`` -> ``python.org`` (public suffix list); an IP or a single label is its own domain."""
    return tld.get_fld(host, fix_protocol=True, fail_silently=True) or host


class Scope:
    """Which URLs a crawl may fetch: the seeds' hosts, the seeds' registrable domains, or a list of hosts."""

    def __init__(self, mode: str, seeds: list[str], hosts: list[str]) -> None:
        if mode == "list" and not hosts:
            raise ValueError("scope 'list' needs the hosts it admits (--scope-hosts / crawl.scope_hosts)")
        self.mode = mode
        self.hosts = {hostname(s) for s in seeds if is_http(s)}
        self.domains = {registrable_domain(h) for h in self.hosts}
        self.listed = tuple(h.lower().rstrip(".") for h in hosts)

    def allows(self, url: str) -> bool:
        host = hostname(url)
        if self.mode == "same-host":
            return host in self.hosts
        if self.mode == "same-domain":
            return registrable_domain(host) in self.domains
        return any(host == h or host.endswith("." + h) for h in self.listed)


def _idna(host: str) -> str:
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise BadUrl(f"{host!r}: {e}") from None


def _encode(part: str, safe: str) -> str:
    """Upper-case escapes, unescape unreserved characters, escape what must be (spaces, non-ASCII, stray %)."""
    if not _NOT_PLAIN.search(part):
        return part  # the common case, and the fast one
    part = _ESCAPE.sub(lambda m: chr(int(m[1], 16)) if chr(int(m[1], 16)) in _UNRESERVED else m[0].upper(), part)
    return quote(_STRAY_PERCENT.sub("%25", part), safe=safe)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: ``/a/b/../c/./d`` -> ``/a/c/d``."""
    if "/." not in path and not path.startswith("."):
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result
