"""Crawl throughput: our crawler with 1 and 2 workers vs ``wget --recursive`` on the same local sites.

Three English documentation sites of the sample corpus (PostgreSQL 15, Python 3.11, git) are served by the
project's local site server (``dataengine.crawl.site_server``: HTTP/1.1 keep-alive, one port per site, in one
child process), so both crawlers see the same servers.  Both start from the sites' index pages, follow links
to HTML pages, obey robots.txt and write a gzipped WARC file; ours does not read sitemaps here (wget cannot),
and the politeness delay is 0 for this benchmark only.  wget fetches one URL at a time; ours spreads hosts
over workers (one host is never fetched by two at once).
On loopback the servers answer in microseconds and the test is of CPU per page (ours is Python, wget is
C); with 20 ms per response, as from a server in a nearby data centre, it is of how waiting is overlapped.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from bench.corpus import sample_by_name
from bench.harness import Row, timed
from dataengine.config import CrawlConfig
from dataengine.crawl.crawler import crawl
from dataengine.crawl.site_server import serve_sites
from dataengine.runtime import ray_session

SITES = ("postgresql-doc-15", "python3.11-doc", "git-doc")
HTML = ["text/html", "application/xhtml+xml"]
LATENCIES = (0.0, 0.02)  # loopback, and a server 20 ms away (a nearby data centre)


def _ours(seeds: list[str], out: Path, workers: int) -> tuple[float, int, int]:
    config = CrawlConfig(contact="bench@dataengine.invalid", allow=["127.0.0.0/8"], delay=0, content_types=HTML,
                         workers=workers, sitemaps=False)  # fmt: skip
    seconds, report = timed(lambda: crawl(seeds, out, config))
    return seconds, report["fetched"], report["bytes"]


def _wget(seeds: list[str], out: Path) -> tuple[float, int, int]:
    if shutil.which("wget") is None:
        raise RuntimeError("the crawl benchmark needs GNU wget: apt-get install -y wget")
    out.mkdir()
    cmd = ["wget", "--recursive", "--level=inf", "--no-verbose", "--delete-after", "--accept=html,htm",
           "--execute=robots=on", f"--directory-prefix={out}", f"--warc-file={out / 'wget'}", *seeds]  # fmt: skip
    seconds, done = timed(lambda: subprocess.run(cmd, capture_output=True, text=True))
    if done.returncode not in (0, 8):  # 8: some URL answered an error (a 404), as on any real site
        raise RuntimeError(f"wget failed ({done.returncode}): {done.stderr[-2000:]}")
    pages = nbytes = 0
    with (out / "wget.warc.gz").open("rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "response" or record.http_headers.get_statuscode() != "200":
                continue
            if record.http_headers.get_header("Content-Type", "").split(";")[0] in HTML:
                pages += 1
                nbytes += len(record.content_stream().read())
    return seconds, pages, nbytes


def run() -> list[Row]:
    web_en = sample_by_name()["web_en"]
    sites = {spec.meta["package"]: spec.path for spec in web_en.path_specs() if spec.meta["package"] in SITES}
    rows = []
    for latency in LATENCIES:
        with tempfile.TemporaryDirectory() as tmp, serve_sites(sites, latency) as served, ray_session(2):
            seeds = [f"http://{target}/index.html" for target in served.values()]
            peer_s, peer_pages, peer_bytes = _wget(seeds, Path(tmp) / "wget")
            for workers in (1, 2):
                seconds, pages, nbytes = _ours(seeds, Path(tmp) / f"ours-{workers}", workers)
                what = f"crawl {len(SITES)} doc sites, {latency * 1000:.0f} ms latency, {workers} worker(s)"
                what += f" ({pages:,} vs {peer_pages:,} pages)"
                rows.append(Row(what, pages / seconds, "wget --recursive", peer_pages / peer_s, "pages/s"))
                rows.append(Row(what, nbytes / seconds / 1e6, "wget --recursive", peer_bytes / peer_s / 1e6, "MB/s"))
    return rows
