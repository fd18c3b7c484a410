"""robots.txt (RFC 9309) with protego: fetched once per host, parsed leniently, asked before every fetch.

What the status of ``/robots.txt`` means, as the RFC and the major crawlers have it: 2xx -> its rules; 4xx
-> no rules (everything allowed); 5xx or no answer -> the host is closed (nothing allowed) until a later
retry succeeds.  Redirects are followed up to five hops; a body beyond 500 KiB is cut (Google's limit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin

from protego import Protego

from dataengine.crawl.charset import detect, to_text
from dataengine.crawl.fetcher import Fetcher, FetchError
from dataengine.crawl.urls import BadUrl, normalize

AGENT = "dataengine-crawler"  # the product token robots.txt groups are matched against
MAX_BYTES = 500 * 1024
MAX_HOPS = 5
TTL = 24 * 3600


@dataclass(frozen=True)
class RobotsTxt:
    """What a host's robots.txt said; small and picklable, so it travels with every lease of the host."""

    status: int  # HTTP status of the final response
    text: str = ""  # empty: no rules
    fetched_at: float = field(default_factory=time.time)

    def fresh(self) -> bool:
        """RFC 9309: a cached robots.txt should not be used for more than 24 hours."""
        return time.time() - self.fetched_at < TTL

    def allows(self, url: str) -> bool:
        return not self.text or _parsed(self.text).can_fetch(url, AGENT)

    def sitemaps(self) -> list[str]:
        """The ``Sitemap:`` URLs of the file, in file order (they belong to no user-agent group)."""
        return list(_parsed(self.text).sitemaps) if self.text else []

    def delay(self) -> float:
        """Seconds between requests the file asks for (Crawl-delay, or Request-rate as seconds per request)."""
        if not self.text:
            return 0.0
        rules = _parsed(self.text)
        delay = rules.crawl_delay(AGENT)
        if delay is None and (rate := rules.request_rate(AGENT)) is not None and rate.requests:
            delay = rate.seconds / rate.requests
        return float(delay or 0.0)


class RobotsUnavailable(Exception):
    """robots.txt answered 5xx or not at all: the host stays closed for now."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def fetch_robots(fetcher: Fetcher, origin: str, pace: Callable[[], float]) -> RobotsTxt:
    """The robots.txt of ``origin`` (``scheme://host[:port]``); ``RobotsUnavailable`` when it must be retried.

    ``pace`` is the host's politeness callable: robots.txt is a request like any other.
    """
    url = origin + "/robots.txt"
    for _ in range(MAX_HOPS + 1):
        try:
            response = fetcher.fetch(url, pace=pace, max_body=MAX_BYTES)
        except FetchError as e:
            raise RobotsUnavailable(e.reason, e.detail) from None
        status = response.status
        if 300 <= status < 400 and response.header("Location"):
            try:
                url = normalize(urljoin(url, response.header("Location")))
            except BadUrl:
                return RobotsTxt(status)  # a broken redirect is as good as no file
            continue
        if status >= 500:
            raise RobotsUnavailable("robots_unavailable", f"{url} answered HTTP {status}")
        if 200 <= status < 300:
            text = to_text(response.body, detect(response.body, response.header("Content-Type")))
            return RobotsTxt(status, text)
        return RobotsTxt(status)  # 4xx (and odd 1xx/3xx): no rules
    return RobotsTxt(status)  # too many redirects: RFC 9309 treats it as unavailable-4xx, i.e. allowed


@lru_cache(maxsize=512)
def _parsed(text: str) -> Protego:
    return Protego.parse(text)
