"""The frontier: which URL is fetched next, by whom, and how every URL ended.

URLs wait in per-host queues (a host is an origin, ``scheme://host:port``, the unit of robots.txt and of
politeness).  A host is leased to one worker at a time; it is due again only after its politeness delay.
Every URL gets exactly one outcome: ``fetched``, ``redirected``, ``failed:<reason>`` or
``skipped:<reason>``.  Outcomes decided by a worker (it tried, or robots.txt forbade it) are final and
logged; outcomes decided here from a link (scope, scheme, limits) are recomputed on every run, so a
resumed crawl may change its scope or limits.

A URL beyond ``max_depth`` is held back, not dropped, until the end: a shorter path to it may still turn up
(breadth-first order is not guaranteed when hosts run in parallel), so the pages a crawl fetches do not
depend on which host answered first.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from dataengine.config import CrawlConfig
from dataengine.crawl.robots import RobotsTxt
from dataengine.crawl.sitemaps import SitemapResult
from dataengine.crawl.urls import MAX_URL, BadUrl, Scope, is_http, normalize, origin, url_key

FETCHED, REDIRECTED, FAILED, SKIPPED = "fetched", "redirected", "failed", "skipped"
LEASE_SECONDS = 10.0  # a lease holds about this much politeness time, so results come back steadily
MAX_LEASE = 32


@dataclass(frozen=True)
class Entry:
    url: str
    depth: int
    seed: int  # index of the seed it was found from (its metadata goes to the documents)
    via: tuple[str, ...] = ()  # the redirects that led here, for loop detection


@dataclass
class Outcome:
    """How one URL ended; one line of the crawl log, and the WARC metadata record of a stored fetch."""

    url: str
    status: str  # fetched | redirected | failed | skipped
    reason: str | None = None  # http_404, timeout, robots_disallowed... (None when fetched)
    depth: int = 0
    seed: int = 0
    via: list[str] = field(default_factory=list)
    requested: bool = False  # a request for the page went out (counts towards max_pages)
    http_status: int | None = None
    content_type: str = ""
    bytes: int = 0
    truncated: bool = False
    charset: str | None = None
    canonical: str | None = None
    redirect: str | None = None
    outlinks: list[str] = field(default_factory=list)
    invalid_links: list[str] = field(default_factory=list)
    attempts: int = 0
    detail: str = ""
    warc: str | None = None  # the WARC file holding its records, when stored
    warc_end: int | None = None  # end offset of those records in it

    @property
    def stored(self) -> bool:
        return self.warc is not None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", [], False) or k == "status"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(**data)


@dataclass
class Lease:
    """URLs of one host for one worker, with what the worker must know about the host."""

    origin: str
    entries: list[Entry]
    robots: RobotsTxt | None  # None: fetch it first
    not_before: float  # wall-clock time of the earliest allowed request (the host's politeness)


@dataclass
class LeaseResult:
    origin: str
    outcomes: list[Outcome]
    published: list[str]  # the worker's WARC files completed meanwhile: their outcomes can be logged now
    unprocessed: list[Entry]  # handed back: the lease ran out of time, or robots.txt is unavailable
    robots: RobotsTxt | None
    robots_error: tuple[str, str] | None  # (reason, detail) when robots.txt could not be had
    next_time: float  # when the host may be asked again
    delay: float  # the politeness delay the worker applied
    sitemaps: SitemapResult | None = None  # what the host's sitemaps listed, when robots.txt was fetched


@dataclass
class HostState:
    origin: str
    queue: deque[Entry] = field(default_factory=deque)
    in_flight: int = 0
    owner: int | None = None
    next_time: float = 0.0
    scheduled: bool = False
    robots: RobotsTxt | None = None
    robots_failures: int = 0
    closed: tuple[str, str] | None = None  # (reason, detail): robots.txt never came; every URL fails so
    delay: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    sitemaps: Counter[str] = field(default_factory=Counter)  # this run's sitemap requests and URLs found
    bytes: int = 0


@dataclass
class Skip:
    url: str
    reason: str
    depth: int
    found_on: str | None


class Frontier:
    def __init__(self, seeds: list[str], config: CrawlConfig) -> None:
        self.config = config
        self.seeds: list[str] = []  # normalised; a seed that is no URL stays as given, at its index
        self._bad_seeds: set[int] = set()
        for i, seed in enumerate(seeds):
            try:
                self.seeds.append(normalize(seed, sort_query=config.sort_query))
            except BadUrl:
                self.seeds.append(seed)
                self._bad_seeds.add(i)
        self.scope = Scope(
            config.scope, [s for i, s in enumerate(self.seeds) if i not in self._bad_seeds], config.scope_hosts
        )
        self.hosts: dict[str, HostState] = {}
        self.done: set[str] = set()  # keys with a final (logged) outcome
        self.queued: set[str] = set()  # keys waiting or in flight
        self.skips: dict[str, Skip] = {}  # decided from the link, this run
        self.too_deep: dict[str, tuple[Entry, str | None]] = {}
        self.counts: Counter[str] = Counter()  # "fetched", "failed:timeout", ...
        self.bytes = 0
        self.requests = 0  # page requests made (final outcomes), towards max_pages
        self.reserved = 0  # URLs out on lease
        self.outbox: list[Outcome] = []  # final outcomes decided here (a closed host), for the log
        self._heap: list[tuple[float, int, str]] = []
        self._tie = itertools.count()

    # -- building up ---------------------------------------------------------------------------------
    def start(self, logged: list[Outcome]) -> None:
        """Take the outcomes of earlier runs as final, then seed: the same frontier as before the stop."""
        for outcome in logged:
            if url_key(outcome.url) not in self.done:
                self._record(outcome)
        for i, seed in enumerate(self.seeds):
            if i in self._bad_seeds:
                self.invalid(seed, 0, None)
            else:
                self.discover(seed, Entry(seed, 0, i), found_on=None)
        for outcome in logged:
            self._follow(outcome)

    def discover(self, url: str, entry: Entry, found_on: str | None) -> None:
        """A URL found as a seed, a link or a redirect target: queue it, hold it back, or count a skip."""
        key = url_key(url)
        if key in self.done or key in self.queued or key in self.skips:
            return
        reason = None
        if not is_http(url):
            reason = "unsupported_scheme"
        elif len(url) > MAX_URL:
            reason = "url_too_long"
        elif not self.scope.allows(url):
            reason = "out_of_scope"
        if reason:
            self.skips[key] = Skip(key, reason, entry.depth, found_on)
            return
        if self.config.max_depth is not None and entry.depth > self.config.max_depth:
            held = self.too_deep.get(key)
            if held is None or entry.depth < held[0].depth:
                self.too_deep[key] = (entry, found_on)
            return
        self.too_deep.pop(key, None)
        host = self._host(origin(url))
        self.queued.add(key)
        if host.closed:
            self._close_entries(host, [entry])
            return
        host.queue.append(entry)
        self._schedule(host)

    def invalid(self, link: str, depth: int, found_on: str | None) -> None:
        """A link (or seed) that is not a URL at all: counted once as skipped."""
        key = url_key(link)
        if key not in self.skips:
            self.skips[key] = Skip(key, "invalid_url", depth, found_on)

    # -- leasing -------------------------------------------------------------------------------------
    def budget(self) -> int | None:
        if self.config.max_pages is None:
            return None
        return max(0, self.config.max_pages - self.requests - self.reserved)

    def leases(self, free: list[int], now: float) -> list[tuple[int, Lease]]:
        """Hand due hosts to workers with a free slot (``free[w]``); a host goes only to its current owner."""
        out: list[tuple[int, Lease]] = []
        deferred: list[HostState] = []
        while self._heap and self._heap[0][0] <= now and any(free):
            budget = self.budget()
            if budget == 0:
                break
            _, _, name = heapq.heappop(self._heap)
            host = self.hosts[name]
            host.scheduled = False
            if not self._leasable(host):
                continue
            worker = host.owner if host.owner is not None else max(range(len(free)), key=lambda w: free[w])
            if free[worker] == 0:
                deferred.append(host)
                continue
            size = self._lease_size(host)
            if budget is not None:
                size = min(size, budget)
            entries = [host.queue.popleft() for _ in range(min(size, len(host.queue)))]
            self.reserved += len(entries)
            host.in_flight += 1
            host.owner = worker
            free[worker] -= 1
            robots = host.robots if host.robots is not None and host.robots.fresh() else None
            out.append((worker, Lease(name, entries, robots, host.next_time)))
            self._schedule(host)
        for host in deferred:
            self._schedule(host)
        return out

    def next_due(self) -> float | None:
        """When the earliest waiting host is due (None: nothing waits)."""
        return self._heap[0][0] if self._heap and self.budget() != 0 else None

    # -- results -------------------------------------------------------------------------------------
    def complete(self, lease: Lease, result: LeaseResult) -> None:
        """Take a worker's outcomes (already logged) and hand its unprocessed URLs back to the queue."""
        host = self.hosts[result.origin]
        host.in_flight -= 1
        if host.in_flight == 0:
            host.owner = None
        self.reserved -= len(lease.entries)
        host.next_time = max(host.next_time, result.next_time)
        host.delay = result.delay
        if result.robots is not None:
            host.robots, host.robots_failures = result.robots, 0
        for outcome in result.outcomes:
            self._record(outcome)
            self._follow(outcome)
        if result.sitemaps is not None:
            host.sitemaps.update(result.sitemaps.counts)
            seed = lease.entries[0].seed
            for url in result.sitemaps.urls:  # one hop from the site's root, like a link on its home page
                self.discover(url, Entry(url, 1, seed), found_on=f"{result.origin}/robots.txt")
        if result.robots_error:
            host.robots_failures += 1
            if host.robots_failures > self.config.robots_retries:
                host.closed = result.robots_error
                self._close_entries(host, [*result.unprocessed, *host.queue])
                host.queue.clear()
                return
            host.next_time = max(host.next_time, result.next_time + self.config.robots_retry_delay)
        host.queue.extendleft(reversed(result.unprocessed))
        self._schedule(host)

    def idle(self) -> bool:
        """Nothing in flight and nothing that may still be leased."""
        return not any(h.in_flight for h in self.hosts.values()) and self.next_due() is None

    def finish(self) -> list[Skip]:
        """Count what is left: URLs past the page budget, URLs past the depth limit.  Every skip, sorted."""
        for host in self.hosts.values():
            for entry in host.queue:
                self.skips[url_key(entry.url)] = Skip(entry.url, "max_pages", entry.depth, None)
                host.counts["skipped:max_pages"] += 1
            host.queue.clear()
        for key, (entry, found_on) in self.too_deep.items():
            self.skips[key] = Skip(entry.url, "max_depth", entry.depth, found_on)
            self._host(origin(entry.url)).counts["skipped:max_depth"] += 1
        self.too_deep.clear()
        skips = sorted(self.skips.values(), key=lambda s: (s.reason, s.url))
        for skip in skips:
            self.counts[f"skipped:{skip.reason}"] += 1
        return skips

    # -- helpers -------------------------------------------------------------------------------------
    def _record(self, outcome: Outcome) -> None:
        key = url_key(outcome.url)
        self.done.add(key)
        self.queued.discard(key)
        label = outcome.status if outcome.status in (FETCHED, REDIRECTED) else f"{outcome.status}:{outcome.reason}"
        self.counts[label] += 1
        self.bytes += outcome.bytes
        self.requests += outcome.requested
        host = self._host(origin(outcome.url))
        host.counts[label] += 1
        host.bytes += outcome.bytes

    def _follow(self, outcome: Outcome) -> None:
        """Queue what a fetched page links to, and where a redirect points."""
        via = tuple(outcome.via)
        for link in outcome.outlinks:
            self.discover(link, Entry(link, outcome.depth + 1, outcome.seed), found_on=outcome.url)
        for link in outcome.invalid_links:
            self.invalid(link, outcome.depth + 1, outcome.url)
        if outcome.redirect:
            target = outcome.redirect
            self.discover(target, Entry(target, outcome.depth, outcome.seed, (*via, outcome.url)), outcome.url)

    def _close_entries(self, host: HostState, entries: list[Entry]) -> None:
        assert host.closed is not None
        reason, detail = host.closed
        for entry in entries:
            outcome = Outcome(entry.url, FAILED, reason, entry.depth, entry.seed, list(entry.via), detail=detail)
            self._record(outcome)
            self.outbox.append(outcome)

    def _host(self, name: str) -> HostState:
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = HostState(name)
        return host

    def _leasable(self, host: HostState) -> bool:
        """Work waits, the host is open, below its concurrency, and its robots.txt is not being fetched."""
        if not host.queue or host.closed or host.in_flight >= self.config.host_concurrency:
            return False
        return host.in_flight == 0 or host.robots is not None

    def _schedule(self, host: HostState) -> None:
        if host.scheduled or not self._leasable(host):
            return
        host.scheduled = True
        heapq.heappush(self._heap, (host.next_time, next(self._tie), host.origin))

    def _lease_size(self, host: HostState) -> int:
        delay = max(host.delay, self.config.delay)
        return max(1, min(MAX_LEASE, int(LEASE_SECONDS / delay) if delay > 0 else MAX_LEASE))
