"""The crawl worker (a Ray actor): it owns the hosts leased to it and visits their URLs politely.

For each lease it fetches the host's robots.txt if the lease carries none, spaces requests by the host's
delay (the larger of the configured delay and robots.txt's Crawl-delay, capped), fetches each allowed URL,
decides its outcome, extracts its links and writes its WARC records to the worker's own WARC file (a path or URI:
the page bytes never go through the driver).  Several leases (hosts) run at once in the actor's threads; one host's
requests are spaced by one clock, whichever thread makes them.
"""

from __future__ import annotations

import threading
import time

from dataengine.config import CrawlConfig
from dataengine.crawl.charset import detect, looks_binary, to_text
from dataengine.crawl.fetcher import Fetcher, FetchError, Response
from dataengine.crawl.frontier import (
    FAILED,
    FETCHED,
    LEASE_SECONDS,
    REDIRECTED,
    SKIPPED,
    Entry,
    Lease,
    LeaseResult,
    Outcome,
)
from dataengine.crawl.guard import AddressGuard
from dataengine.crawl.links import extract_links
from dataengine.crawl.robots import RobotsTxt, RobotsUnavailable, fetch_robots
from dataengine.crawl.sitemaps import read_sitemaps
from dataengine.crawl.urls import BadUrl, normalize
from dataengine.crawl.warcfile import WarcParts, fetch_records

HTML_TYPES = ("text/html", "application/xhtml+xml", "")


class HostClock:
    """Spaces the requests to one host: each starts at least ``delay`` seconds after the previous one."""

    def __init__(self, delay: float) -> None:
        self.next_start = 0.0
        self.last_start = 0.0
        self.delay = delay
        self._lock = threading.Lock()

    def pace(self) -> float:
        """Wait for this host's next slot; the request's start time (wall clock, comparable across nodes)."""
        with self._lock:
            start = max(time.time(), self.next_start)
            self.next_start = start + self.delay  # reserved, so concurrent threads queue behind it
        while (now := time.time()) < start:  # loop: sleep runs on the monotonic clock, the slot on the wall clock
            time.sleep(start - now)
        with self._lock:
            self.last_start = max(self.last_start, now)
            self.next_start = max(self.next_start, now + self.delay)
        return now

    def set_delay(self, delay: float) -> None:
        with self._lock:
            self.delay = delay
            self.next_start = max(self.next_start, self.last_start + delay)

    def not_before(self, when: float) -> None:
        with self._lock:
            self.next_start = max(self.next_start, when)


class CrawlWorker:
    def __init__(
        self, config: CrawlConfig, user_agent: str, out: str, run: int, index: int, info: dict[str, str]
    ) -> None:
        """``out``, ``run``, ``index``, ``info``: where and under which names this worker writes its WARC files."""
        self.config, self.warcs = config, WarcParts(out, run, index, info)
        guard = AddressGuard(tuple(config.allow), tuple(config.connect_to.items()))
        self.fetcher = Fetcher(config, user_agent, guard)
        self._clocks: dict[str, HostClock] = {}
        self._lock = threading.Lock()

    def crawl(self, lease: Lease) -> LeaseResult:
        """Visit the lease's URLs in order; hand back the rest after about ``LEASE_SECONDS`` of work."""
        clock = self._clock(lease.origin)
        clock.not_before(lease.not_before)
        robots, sitemaps = lease.robots, None
        if robots is None:
            try:
                robots = fetch_robots(self.fetcher, lease.origin, clock.pace)
            except RobotsUnavailable as e:
                return LeaseResult(lease.origin, [], [], lease.entries, None, (e.reason, e.detail), clock.next_start, 0)
        delay = max(self.config.delay, min(robots.delay(), self.config.max_crawl_delay))
        clock.set_delay(delay)
        if lease.robots is None and self.config.sitemaps and robots.sitemaps():
            sitemaps = read_sitemaps(self.fetcher, lease.origin, robots.sitemaps(), clock.pace, self.config.sort_query)
        deadline = time.monotonic() + LEASE_SECONDS
        outcomes: list[Outcome] = []
        published: list[str] = []
        unprocessed: list[Entry] = []
        for i, entry in enumerate(lease.entries):
            if i and time.monotonic() > deadline:
                unprocessed = lease.entries[i:]
                break
            outcome, records = self._visit(entry, robots, clock)
            if records:
                outcome.warc, outcome.warc_end, done = self.warcs.append(records)
                published += done
            outcomes.append(outcome)
        return LeaseResult(
            lease.origin, outcomes, published, unprocessed, robots, None, clock.next_start, delay, sitemaps
        )

    def publish(self) -> list[str]:
        """Complete this worker's open WARC file (the driver logs its outcomes once it is)."""
        return self.warcs.publish()

    def _clock(self, origin: str) -> HostClock:
        with self._lock:
            if origin not in self._clocks:
                self._clocks[origin] = HostClock(self.config.delay)  # robots.txt may raise it
            return self._clocks[origin]

    def _visit(self, entry: Entry, robots: RobotsTxt, clock: HostClock) -> tuple[Outcome, bytes]:
        """Fetch one URL: its outcome, and its WARC records when the response is kept (else b"")."""
        cfg = self.config
        outcome = Outcome(entry.url, FETCHED, depth=entry.depth, seed=entry.seed, via=list(entry.via))
        if not robots.allows(entry.url):
            outcome.status, outcome.reason = SKIPPED, "robots_disallowed"
            return outcome, b""
        outcome.requested = True
        try:
            response = self.fetcher.fetch(entry.url, pace=clock.pace, content_types=cfg.content_types)
        except FetchError as e:
            outcome.status, outcome.reason, outcome.detail = FAILED, e.reason, e.detail[:500]
            return outcome, b""
        status = response.status
        outcome.http_status, outcome.content_type, outcome.attempts = status, response.content_type, response.attempts
        if 300 <= status < 400:
            self._redirect(outcome, entry, response)
        elif not 200 <= status < 300:
            outcome.status, outcome.reason = FAILED, f"http_{status}"
        elif not response.body_read:
            outcome.status, outcome.reason, outcome.detail = SKIPPED, "content_type", response.content_type
            return outcome, b""
        elif looks_binary(response.body):
            outcome.status, outcome.reason, outcome.detail = SKIPPED, "binary", "NUL bytes in the first 8 KiB"
            return outcome, b""
        else:
            outcome.charset = detect(response.body, response.header("Content-Type"))
            if response.content_type in HTML_TYPES:
                links = extract_links(to_text(response.body, outcome.charset), entry.url, cfg.sort_query)
                outcome.outlinks, outcome.invalid_links = links.outlinks, links.invalid
                outcome.canonical = links.canonical
        outcome.bytes, outcome.truncated = len(response.body), response.truncated
        meta = {k: v for k, v in outcome.to_json().items() if k not in ("outlinks", "invalid_links")}
        return outcome, fetch_records(response, meta)

    def _redirect(self, outcome: Outcome, entry: Entry, response: Response) -> None:
        """A 3xx is a new URL for the frontier (its own robots and scope checks), unless it loops."""
        status, location = response.status, response.header("Location")
        outcome.status, outcome.reason = FAILED, f"http_{status}"
        if not location:
            return
        try:
            target = normalize(location, entry.url, self.config.sort_query)
        except BadUrl as e:
            outcome.reason, outcome.detail = "invalid_redirect", str(e)
            return
        outcome.detail = f"-> {target}"
        if target == entry.url or target in entry.via:
            outcome.reason = "redirect_loop"
        elif len(entry.via) >= self.config.max_redirects:
            outcome.reason = "too_many_redirects"
        else:
            outcome.status, outcome.reason, outcome.redirect = REDIRECTED, f"http_{status}", target
