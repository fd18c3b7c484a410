"""The crawl driver: the frontier on the driver, hosts leased to Ray actors, outcomes logged as their WARC files
are completed.

Workers do the network and CPU work (fetching, decoding, link extraction, WARC record compression) and write
the records to WARC files of their own in the crawl directory (a path every node sees, or an object-store URI),
returning compact outcomes; the driver keeps the frontier and writes the log, skip list and report.  Adding workers
adds hosts crawled at once, never requests to one host.
"""

from __future__ import annotations

import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dataengine import storage
from dataengine.config import CrawlConfig
from dataengine.crawl.frontier import FAILED, SKIPPED, Frontier, Lease, Outcome
from dataengine.crawl.site_server import serve_sites
from dataengine.crawl.store import REPORT, CrawlStore
from dataengine.crawl.warcfile import crawl_warcs
from dataengine.crawl.worker import CrawlWorker
from dataengine.runtime import start_ray

HOSTS_PER_WORKER = 8  # leases (hosts) one actor works on at once, in threads: the network waits, not the CPU


def user_agent(config: CrawlConfig) -> str:
    return f"dataengine-crawler/{version('dataengine')} (+{config.contact})"


def read_seeds(path: Path) -> list[str]:
    """Seed URLs from a file: one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ValueError(f"seeds file not found: {path}") from None
    seeds = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not seeds:
        raise ValueError(f"{path}: no seed URLs in it")
    return seeds


def crawl(seeds: list[str], out: str | Path, config: CrawlConfig, console: Console | None = None) -> dict[str, Any]:
    """Crawl from ``seeds`` into ``out`` and return the report; whatever ``out`` already holds is resumed.

    Runs on the caller's Ray (``dataengine.runtime.ray_session``), or starts a local one.  The directories of
    ``config.local_sites`` are served on 127.0.0.1 for the duration (``dataengine.crawl.site_server``).
    """
    if not seeds:
        raise ValueError("no seed URLs to crawl")
    console = console or Console(stderr=True)
    if config.local_sites:
        with serve_sites(config.local_sites) as connect_to:
            served = {"connect_to": {**config.connect_to, **connect_to}, "allow": [*config.allow, "127.0.0.1"]}
            return _crawl(seeds, str(out), config.model_copy(update=served), console)
    return _crawl(seeds, str(out), config, console)


def _crawl(seeds: list[str], out: str, config: CrawlConfig, console: Console) -> dict[str, Any]:
    ua = user_agent(config)
    store = CrawlStore(out)
    try:
        frontier = Frontier(seeds, config)
        frontier.start(store.logged)
        if store.logged and frontier.idle():
            console.print(f"crawl: {out} is complete ({len(store.logged):,} URLs); nothing to fetch")
        elif store.logged:
            console.print(f"crawl: resuming {out} ({len(store.logged):,} URLs done, {store.trimmed:,} bytes trimmed)")
        start, requests, nbytes = time.perf_counter(), frontier.requests, frontier.bytes
        if not frontier.idle():
            _drive(frontier, store, config, ua, console)
        seconds = time.perf_counter() - start
        skips = frontier.finish()
        report = _report(frontier, ua, out)
        report["run"] = {
            "seconds": round(seconds, 3),
            "requests": frontier.requests - requests,
            "bytes": frontier.bytes - nbytes,
            "resumed_urls": len(store.logged),
            "trimmed_bytes": store.trimmed,
        }
        store.finish(skips, report)
    finally:
        store.close()
    failed, skipped = sum(report["failed"].values()), sum(report["skipped"].values())
    console.print(
        f"crawl: {report['fetched']:,} fetched, {report['redirected']:,} redirected, {failed:,} failed, "
        f"{skipped:,} skipped; {report['run']['requests']:,} requests in {report['run']['seconds']:.1f} s "
        f"-> {storage.join(out, REPORT)}"
    )
    return report


def _drive(frontier: Frontier, store: CrawlStore, config: CrawlConfig, ua: str, console: Console) -> None:
    n = config.workers or start_ray()
    placement: str | NodeAffinitySchedulingStrategy = "SPREAD"
    if config.local_sites:  # served on this machine's loopback: only workers on this node reach them
        placement = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(CrawlWorker).options(num_cpus=0, max_concurrency=HOSTS_PER_WORKER, scheduling_strategy=placement)
    info = {"software": ua, "format": "WARC File Format 1.1", "robots": "obey"}
    workers = [actor.remote(config, ua, store.out, store.run, w, info) for w in range(n)]
    free = [HOSTS_PER_WORKER] * n
    pending: dict[ray.ObjectRef, tuple[int, Lease]] = {}
    log = OutcomeLog(store)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("crawl", total=None)
            while True:
                log.add(frontier.outbox, [])
                frontier.outbox.clear()
                for w, lease in frontier.leases(free, time.time()):
                    pending[workers[w].crawl.remote(lease)] = (w, lease)
                due = frontier.next_due()
                if not pending:
                    if due is None:
                        break
                    time.sleep(min(max(0.0, due - time.time()), 1.0))
                    continue
                timeout = None if due is None or not any(free) else max(0.05, due - time.time())
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
                for ref in ready:
                    w, lease = pending.pop(ref)
                    free[w] += 1
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayActorError as e:
                        raise RuntimeError(f"a crawl worker died ({e}); run the same command again to resume") from e
                    log.add(result.outcomes, result.published)
                    frontier.complete(lease, result)
                    progress.update(task, description=_progress_line(frontier))
    finally:
        try:  # the open WARC files completed, so what they hold is logged (also after an error or Ctrl-C)
            log.add(
                [], [name for names in ray.get([w.publish.remote() for w in workers], timeout=120) for name in names]
            )
        finally:
            for worker in workers:
                ray.kill(worker)


class OutcomeLog:
    """Outcomes wait here until the WARC file holding their records is complete, then go to the crawl log."""

    def __init__(self, store: CrawlStore) -> None:
        self.store = store
        self.waiting: dict[str, list[Outcome]] = {}  # WARC file -> outcomes whose records it holds
        self.complete: set[str] = set()

    def add(self, outcomes: list[Outcome], published: list[str]) -> None:
        """Log what can be logged: outcomes with no records or records in a complete file, and those waiting on
        the files just ``published``."""
        self.complete.update(published)
        ready = [o for name in published for o in self.waiting.pop(name, [])]
        for outcome in outcomes:
            if outcome.warc is None or outcome.warc in self.complete:
                ready.append(outcome)
            else:
                self.waiting.setdefault(outcome.warc, []).append(outcome)
        if ready:
            self.store.log(ready)


def _progress_line(frontier: Frontier) -> str:
    counts = frontier.counts
    failed = sum(v for k, v in counts.items() if k.startswith(f"{FAILED}:"))
    skipped = sum(v for k, v in counts.items() if k.startswith(f"{SKIPPED}:"))
    queued = sum(len(h.queue) for h in frontier.hosts.values())
    return (
        f"crawl: {counts['fetched']:,} fetched, {failed:,} failed, {skipped:,} skipped, {queued:,} queued, "
        f"{frontier.bytes / 1e6:,.1f} MB, {len(frontier.hosts):,} hosts"
    )


def _by_reason(counts: dict[str, int], status: str) -> dict[str, int]:
    prefix = f"{status}:"
    return {k.removeprefix(prefix): v for k, v in sorted(counts.items()) if k.startswith(prefix)}


def _report(frontier: Frontier, ua: str, out: str) -> dict[str, Any]:
    counts = frontier.counts
    sitemaps: Counter[str] = sum((h.sitemaps for h in frontier.hosts.values()), Counter())
    hosts = {}
    for name, host in sorted(frontier.hosts.items()):
        robots = host.robots.status if host.robots else None
        hosts[name] = {
            "fetched": host.counts["fetched"],
            "redirected": host.counts["redirected"],
            "failed": _by_reason(host.counts, FAILED),
            "skipped": _by_reason(host.counts, SKIPPED),
            "bytes": host.bytes,
            "robots_status": f"closed: {host.closed[0]}" if host.closed else robots,
            "sitemaps": dict(sorted(host.sitemaps.items())),
            "delay_s": host.delay,
        }
    return {
        "seeds": frontier.seeds,
        "user_agent": ua,
        "urls": sum(counts.values()),
        "fetched": counts["fetched"],
        "redirected": counts["redirected"],
        "failed": _by_reason(counts, FAILED),
        "skipped": _by_reason(counts, SKIPPED),
        "requests": frontier.requests,
        "sitemaps": dict(sorted(sitemaps.items())),  # this run's: requests for them are not page requests
        "bytes": frontier.bytes,
        "hosts": hosts,
        "warc_files": crawl_warcs(out),
    }
