"""Crawl throughput: our crawler with 1 and 2 workers vs ``wget --recursive`` on the same local sites.

Three English documentation sites of the sample corpus (PostgreSQL 15, Python 3.11, git) are served by the
standard library's file server (HTTP/1.1 keep-alive, one process per site, each on its own loopback address),
so both crawlers see the same servers.  Both start from the sites' index pages, follow links to HTML pages,
obey robots.txt and write a gzipped WARC file; the politeness delay is 0 for this benchmark only.  wget
fetches one URL at a time; ours spreads hosts over workers (one host is never fetched by two at once).
On loopback the servers answer in microseconds and the test is of CPU per page (ours is Python, wget is
C); with 20 ms per response, as from a server in a nearby data centre, it is of how waiting is overlapped.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from bench.corpus import sample_by_name
from bench.harness import Row, timed
from dataengine.config import CrawlConfig
from dataengine.crawl.crawler import crawl
from dataengine.runtime import ray_session

SITES = ("postgresql-doc-15", "python3.11-doc", "git-doc")
HTML = ["text/html", "application/xhtml+xml"]
LATENCIES = (0.0, 0.02)  # loopback, and a server 20 ms away (a nearby data centre)


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers
    disable_nagle_algorithm = True  # else headers and body in two writes stall 40 ms on delayed ACKs

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        time.sleep(self.server.latency)  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def _serve_forever(ip: str, port: int, root: str, latency: float) -> None:
    server = ThreadingHTTPServer((ip, port), partial(_Handler, directory=root))
    server.latency = latency  # type: ignore[attr-defined]
    server.serve_forever()


@contextlib.contextmanager
def serve(dirs: list[str], latency: float = 0.0) -> Iterator[list[str]]:
    """One static file server process per directory on 127.0.0.11, .12, ...; yields their root URLs.

    ``latency``: seconds each response waits, as a distant server's round trip would.
    """
    spawn = multiprocessing.get_context("spawn")
    procs, roots = [], []
    try:
        for i, root in enumerate(dirs):
            ip = f"127.0.0.{11 + i}"
            with socket.socket() as s:
                s.bind((ip, 0))
                port = s.getsockname()[1]
            proc = spawn.Process(target=_serve_forever, args=(ip, port, root, latency), daemon=True)
            proc.start()
            procs.append(proc)
            roots.append(f"http://{ip}:{port}/")
            for _ in range(200):
                with contextlib.suppress(OSError), socket.create_connection((ip, port), timeout=1):
                    break
                time.sleep(0.05)
        yield roots
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def _ours(seeds: list[str], out: Path, workers: int) -> tuple[float, int, int]:
    config = CrawlConfig(contact="bench@dataengine.invalid", allow=["127.0.0.0/8"], delay=0, content_types=HTML,
                         workers=workers)  # fmt: skip
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
    dirs = [spec.path for spec in web_en.path_specs() if spec.meta["package"] in SITES]
    rows = []
    for latency in LATENCIES:
        with tempfile.TemporaryDirectory() as tmp, serve(dirs, latency) as roots, ray_session(2):
            seeds = [root + "index.html" for root in roots]
            peer_s, peer_pages, peer_bytes = _wget(seeds, Path(tmp) / "wget")
            for workers in (1, 2):
                seconds, pages, nbytes = _ours(seeds, Path(tmp) / f"ours-{workers}", workers)
                what = f"crawl {len(SITES)} doc sites, {latency * 1000:.0f} ms latency, {workers} worker(s)"
                what += f" ({pages:,} vs {peer_pages:,} pages)"
                rows.append(Row(what, pages / seconds, "wget --recursive", peer_pages / peer_s, "pages/s"))
                rows.append(Row(what, nbytes / seconds / 1e6, "wget --recursive", peer_bytes / peer_s / 1e6, "MB/s"))
    return rows
