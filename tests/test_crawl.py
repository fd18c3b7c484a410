"""The crawler against real local web servers the test starts on 127.0.0.x: behaviour, WARC, resume, safety.

Each host is an ``http.server`` in a thread with its own loopback address, serving pages built here: 404s,
500s that recover, a slow page, a redirect loop, robots.txt with Disallow and Crawl-delay, a missing and a
failing robots.txt, a huge body, a binary ``.html``, a GBK page, gzip and brotli encodings, ``<base href>``,
a canonical link, links out of scope and to other schemes.  Every server records what it was asked.
"""

from __future__ import annotations

import gzip
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli
import pyarrow as pa
import pytest
from warcio.archiveiterator import ArchiveIterator

from dataengine import storage
from dataengine.config import CrawlConfig, PathSpec, SourceConfig, load_sources
from dataengine.crawl.charset import detect
from dataengine.crawl.crawler import crawl
from dataengine.crawl.guard import AddressGuard, BlockedAddress
from dataengine.crawl.links import extract_links
from dataengine.crawl.robots import RobotsTxt
from dataengine.crawl.store import LOG, read_log
from dataengine.crawl.urls import BadUrl, Scope, normalize
from dataengine.extract import extract_batch
from dataengine.sources import get_reader, read_units
from pipelines.crawl import main as crawl_cli
from tests.corpus import ZH_SENTENCES
from tests.s3 import S3Server

CONTACT = "crawler-tests@dataengine.invalid"
MAX_BODY = 100_000


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    sleep: float = 0.0


Route = Callable[[int], Reply]  # number of earlier requests for the path -> the reply


class Site:
    """One host on its own loopback address; ``hits`` and ``arrivals`` record every request."""

    def __init__(self, ip: str, routes: dict[str, Route | Reply]) -> None:
        self.routes = routes
        self.hits: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str]] = []
        self.agents: set[str] = set()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((ip, 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def root(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.root + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reply(self, path: str) -> Reply:
        with self.lock:
            n = self.hits[path]
            self.hits[path] += 1
            self.arrivals.append((time.monotonic(), path))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        route = self.routes.get(path)
        if route is None:
            return Reply(b"<html><body>not found</body></html>", status=404)
        return route(n) if callable(route) else route

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                site.agents.add(self.headers.get("User-Agent", ""))
                reply = site.reply(self.path)
                try:
                    time.sleep(reply.sleep)
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the crawler gave up on it (a timeout, a truncated body)
                finally:
                    with site.lock:
                        site.in_flight -= 1

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def page(title: str, links: list[str], extra: str = "", head: str = "") -> bytes:
    anchors = "".join(f'<li><a href="{h}">{h}</a></li>' for h in links)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
        f"<body><h1>{title}</h1><p>{title} is a page of the crawler's test site.</p>{extra}<ul>{anchors}</ul>"
        "</body></html>"
    ).encode()


def gbk_page() -> bytes:
    text = "".join(ZH_SENTENCES)
    html = f"<html><head><title>中文页面</title></head><body><h1>中文页面</h1><p>{text}</p>"
    return (html + '<a href="/gbk-target.html">下一页</a></body></html>').encode("gbk")


def flaky(n: int) -> Reply:
    return Reply(page("Flaky", [])) if n >= 2 else Reply(b"busy", status=500)


HUGE = page("Huge", [], extra="<p>" + "all work and no play " * 20_000 + "</p>")
BINARY = bytes(random.Random(0).randrange(256) for _ in range(4096)) + b"\0" * 16
GZIPPED = page("Gzipped", [])


@pytest.fixture(scope="module")
def sites() -> Iterator[dict[str, Site]]:
    out_of_scope = Site("127.0.0.5", {"/": Reply(page("Elsewhere", []))})
    b_site = Site(
        "127.0.0.3", {"/": Reply(page("B home", ["/b1.html", "/slow.html"])), "/b1.html": Reply(page("B1", []))}
    )
    b_site.routes["/slow.html"] = Reply(page("Slow", []), sleep=3.0)
    a_routes: dict[str, Route | Reply] = {
        "/robots.txt": Reply(
            b"User-agent: *\nDisallow: /private/\nCrawl-delay: 0.2\n", headers={"Content-Type": "text/plain"}
        ),
        "/page1.html": Reply(page("Page one", ["page2.html?b=2&a=1#top", "/page2.html?b=2&a=1"])),
        "/page2.html?b=2&a=1": Reply(page("Page two", ["/page1.html"])),
        "/private/secret.html": Reply(page("Secret", [])),
        "/flaky.html": flaky,
        "/loop/a": Reply(status=302, headers={"Location": "/loop/b"}),
        "/loop/b": Reply(status=302, headers={"Location": "/loop/a"}),
        "/huge.html": Reply(HUGE),
        "/binary.html": Reply(BINARY, headers={"Content-Type": "text/html"}),
        "/gbk.html": Reply(gbk_page(), headers={"Content-Type": "text/html"}),
        "/gbk-target.html": Reply(page("GBK target", [])),
        "/image.png": Reply(b"\x89PNG\r\n\x1a\n" + bytes(1000), headers={"Content-Type": "image/png"}),
        "/gzip.html": Reply(
            gzip.compress(GZIPPED), headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
        ),
        "/brotli.html": Reply(
            brotli.compress(GZIPPED), headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "br"}
        ),
        "/base/index.html": Reply(
            page("Base", ["child.html"], head='<base href="/elsewhere/"><link rel="canonical" href="/canonical.html">')
        ),
        "/elsewhere/child.html": Reply(page("Child", [])),
    }
    a_links = [
        "/page1.html",
        "/private/secret.html",
        "/missing.html",
        "/flaky.html",
        "/loop/a",
        "/huge.html",
        "/binary.html",
        "/gbk.html",
        "/image.png",
        "/gzip.html",
        "/brotli.html",
        "/base/index.html",
        b_site.url("/"),
        out_of_scope.url("/"),
        "file:///etc/passwd",
        "ftp://ftp.debian.org/debian/",
        "data:text/html,<p>inline</p>",
        "mailto:someone@example.org",
        "javascript:void(0)",
        "http://[::1",
    ]
    a_routes["/"] = Reply(page("A home", a_links))
    a_site = Site("127.0.0.2", a_routes)
    c_site = Site("127.0.0.4", {"/robots.txt": Reply(b"down", status=503), "/": Reply(page("C home", []))})
    all_sites = {"a": a_site, "b": b_site, "c": c_site, "out": out_of_scope}
    yield all_sites
    for site in all_sites.values():
        site.close()


def crawl_config(**overrides: object) -> CrawlConfig:
    """Small delays and timeouts so the whole behaviour runs in seconds (politeness still measurable)."""
    settings: dict[str, object] = dict(
        contact=CONTACT,
        allow=["127.0.0.0/8"],
        delay=0.02,
        connect_timeout=0.5,
        timeout=0.5,
        retries=2,
        backoff=0.02,
        backoff_cap=0.1,
        robots_retry_delay=0.1,
        robots_retries=1,
        max_body_bytes=MAX_BODY,
        workers=2,
    )
    settings.update(overrides)
    return CrawlConfig(**settings)  # type: ignore[arg-type]


REFUSED = "http://127.0.0.7:9/"  # nothing listens on the discard port


@pytest.fixture(scope="module")
def crawled(sites: dict[str, Site], tmp_path_factory: pytest.TempPathFactory, ray_local: None) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("crawl")
    seeds = [sites["a"].url("/"), sites["b"].url("/"), sites["c"].url("/"), REFUSED]
    return out, crawl(seeds, out, crawl_config())


def warc_records(out: Path) -> list:
    records = []
    for path in sorted(out.glob("*.warc.gz")):
        with path.open("rb") as f:
            for record in ArchiveIterator(f):
                record.payload = record.content_stream().read()
                records.append(record)
    return records


# -- the crawl's outcomes ----------------------------------------------------------------------------------
def test_every_url_ends_in_one_counted_outcome(crawled: tuple[Path, dict], sites: dict[str, Site]) -> None:
    out, report = crawled
    assert report["fetched"] == 13  # A: home, page1, page2, flaky, huge, gbk, gbk-target, gzip, br, base, child; B: 2
    assert report["redirected"] == 1  # /loop/a -> /loop/b
    assert report["failed"] == {
        "http_404": 1,  # /missing.html
        "redirect_loop": 1,  # /loop/b -> /loop/a
        "timeout": 1,  # /slow.html, after its retries
        "robots_unavailable": 1,  # C's robots.txt answers 503
        "connection_refused": 1,
    }
    assert report["skipped"] == {
        "robots_disallowed": 1,
        "content_type": 1,  # image/png, body never downloaded
        "binary": 1,  # bytes served as text/html
        "out_of_scope": 1,
        "unsupported_scheme": 5,  # file:, ftp:, data:, mailto:, javascript:
        "invalid_url": 1,  # http://[::1
    }
    assert report["urls"] == 13 + 1 + 5 + 10
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    decided_by_workers = ("robots_disallowed", "content_type", "binary")  # in log.jsonl, the rest in skipped.jsonl
    assert Counter(s["reason"] for s in skipped) == {
        k: v for k, v in report["skipped"].items() if k not in decided_by_workers
    }
    a = sites["a"]
    assert a.hits["/flaky.html"] == 3  # two 500s, then the page
    assert a.hits["/private/secret.html"] == 0 and a.hits["/image.png"] == 1
    assert sites["b"].hits["/slow.html"] == 3  # the first try and two retries, each past the 0.5 s timeout
    assert sites["c"].hits["/"] == 0 and sites["c"].hits["/robots.txt"] == 6  # 3 tries x 2 rounds, then closed
    assert sum(sites["out"].hits.values()) == 0
    assert report["hosts"][sites["c"].root]["robots_status"] == "closed: robots_unavailable"


def test_politeness_one_request_at_a_time_spaced_by_crawl_delay(crawled: tuple[Path, dict], sites: dict[str, Site]):
    out, report = crawled
    a = sites["a"]
    assert report["hosts"][a.root]["delay_s"] == 0.2  # robots.txt's Crawl-delay beats the configured 0.02
    assert a.max_in_flight == 1
    # WARC-Date of a request record is when the request started (microseconds): the crawler's own clock,
    # so the check does not depend on how fast the test server got to each request
    starts = sorted(
        datetime.fromisoformat(r.rec_headers.get_header("WARC-Date").replace("Z", "+00:00")).timestamp()
        for r in warc_records(out)
        if r.rec_type == "request" and r.rec_headers.get_header("WARC-Target-URI").startswith(a.root)
    )
    assert len(starts) == 14  # every stored response of A (robots.txt and the retried 500s are not stored)
    assert (
        min(later - earlier for earlier, later in zip(starts, starts[1:], strict=False)) >= 0.2 - 1e-6
    )  # 1 µs: WARC-Date's precision
    assert all(CONTACT in agent and agent.startswith("dataengine-crawler/") for agent in a.agents)


def test_warc_holds_what_was_served(crawled: tuple[Path, dict], sites: dict[str, Site]) -> None:
    out, _ = crawled
    records = warc_records(out)
    responses = {r.rec_headers.get_header("WARC-Target-URI"): r for r in records if r.rec_type == "response"}
    requests = {r.rec_headers.get_header("WARC-Concurrent-To"): r for r in records if r.rec_type == "request"}
    metadata = {
        r.rec_headers.get_header("WARC-Target-URI"): json.loads(r.payload) for r in records if r.rec_type == "metadata"
    }
    a = sites["a"]
    for path, route in a.routes.items():
        url = normalize(a.url(path))
        if not isinstance(route, Reply) or url not in responses or path in ("/huge.html", "/gzip.html", "/brotli.html"):
            continue
        assert responses[url].payload == route.body, path
    assert responses[a.url("/flaky.html")].payload == page("Flaky", [])
    huge = responses[a.url("/huge.html")]
    assert huge.payload == HUGE[:MAX_BODY] and huge.rec_headers.get_header("WARC-Truncated") == "length"
    assert metadata[a.url("/huge.html")]["truncated"] is True
    for path, coding in (("/gzip.html", "gzip"), ("/brotli.html", "br")):
        decoded = responses[a.url(path)]
        assert decoded.payload == GZIPPED and decoded.http_headers.get_header("X-Crawler-Content-Encoding") == coding
    assert responses[a.url("/missing.html")].http_headers.get_statuscode() == "404"
    assert responses[a.url("/loop/a")].http_headers.get_header("Location") == "/loop/b"
    for url, response in responses.items():
        request = requests[response.rec_headers.get_header("WARC-Record-ID")]
        assert request.http_headers.get_header("User-Agent").endswith(f"(+{CONTACT})"), url
        assert url in metadata
    assert not any(u.endswith(("/binary.html", "/image.png", "/private/secret.html")) for u in responses)
    gbk = metadata[a.url("/gbk.html")]
    assert gbk["charset"] == "gb18030"
    assert metadata[a.url("/base/index.html")]["canonical"] == a.url("/canonical.html")
    assert a.hits["/elsewhere/child.html"] == 1  # resolved against <base href>, not the page's own URL
    assert metadata[a.url("/page2.html?b=2&a=1")]["depth"] == 2


# -- the build source ------------------------------------------------------------------------------------------
def test_crawl_source_gives_one_row_per_url_with_crawl_reasons(crawled: tuple[Path, dict], sites: dict[str, Site]):
    out, report = crawled
    seeds = [sites["a"].url("/"), sites["b"].url("/"), sites["c"].url("/"), REFUSED]
    source = SourceConfig(
        name="web",
        kind="crawl",
        lang="zh",
        paths=[PathSpec(path=s, meta={"seed": i}) for i, s in enumerate(seeds)],
        crawl=crawl_config(out=str(out)),
    )
    hits_before = sum(sum(s.hits.values()) for s in sites.values())
    reader = get_reader("crawl")
    units = [u.to_dict() for u in reader.units(source)]  # the crawl is complete: nothing is fetched again
    assert sum(sum(s.hits.values()) for s in sites.values()) == hits_before
    rows = read_units(pa.Table.from_pylist(units), {"web": source}, max_bytes=1_000_000)
    rows = extract_batch(rows).to_pylist()
    logged, _ = read_log(out)
    assert sorted(r["url"] for r in rows) == sorted(o.url for o in logged)  # one row per URL the crawler decided
    reasons = Counter(r["reject"] for r in rows)
    assert reasons["crawl:robots_disallowed"] == 1 and reasons["crawl:binary"] == 1
    assert reasons["crawl:http_404"] == 1 and reasons["crawl:redirect_loop"] == 1 and reasons["crawl:redirected"] == 1
    assert reasons["crawl:robots_unavailable"] == 1 and reasons["crawl:connection_refused"] == 1
    by_url = {r["url"]: r for r in rows}
    gbk = by_url[sites["a"].url("/gbk.html")]
    assert gbk["reject"] is None and ZH_SENTENCES[0] in gbk["text"]  # transcoded from GBK with the crawl's charset
    meta = json.loads(gbk["meta"])
    assert meta["seed"] == 0 and meta["charset"] == "gb18030" and meta["depth"] == 1
    assert json.loads(by_url[sites["b"].url("/b1.html")]["meta"])["seed"] == 1
    assert report["fetched"] == sum(1 for r in rows if not (r["reject"] or "").startswith("crawl:"))


def test_crawl_source_yaml_paths_are_relative_to_the_file_and_contact_is_required(tmp_path: Path) -> None:
    yaml_path = tmp_path / "sources.yaml"
    yaml_path.write_text(
        "sources:\n  - {name: web, kind: crawl, lang: en, paths: ['https://docs.example.org/'],\n"
        "     crawl: {contact: me@example.org, out: crawl/web, max_pages: 10}}\n"
    )
    (source,) = load_sources(yaml_path)
    assert source.crawl is not None and source.crawl.out == str(tmp_path / "crawl" / "web")
    yaml_path.write_text("sources:\n  - {name: web, kind: crawl, paths: ['https://x.org/'], crawl: {max_pages: 3}}\n")
    with pytest.raises(ValueError, match="contact"):
        load_sources(yaml_path)


# -- resume ----------------------------------------------------------------------------------------------------
def chain_site(ip: str, n: int) -> Site:
    routes: dict[str, Route | Reply] = {f"/{i}.html": Reply(page(f"Page {i}", [f"/{i + 1}.html"])) for i in range(n)}
    routes[f"/{n - 1}.html"] = Reply(page("Last", []))
    return Site(ip, routes)


def test_resume_after_a_stop_and_after_a_crash_refetches_nothing_in_the_warc(tmp_path: Path, ray_local: None) -> None:
    site = chain_site("127.0.0.6", 12)
    try:
        seeds = [site.url("/0.html")]
        first = crawl(seeds, tmp_path, crawl_config(max_pages=4))
        assert first["fetched"] == 4 and first["skipped"] == {"max_pages": 1}
        # a crash after the WARC records of the last two pages were written but before they were logged,
        # in the middle of writing another record and another log line
        log = tmp_path / LOG
        lines = log.read_text().splitlines(keepends=True)
        log.write_text("".join(lines[:2]) + lines[2][:20])
        with next(tmp_path.glob("*.warc.gz")).open("ab") as f:
            f.write(gzip.compress(b"WARC/1.1\r\nWARC-Type: response\r\n")[:30])
        second = crawl(seeds, tmp_path, crawl_config())
        assert second["fetched"] == 12 and second["run"]["resumed_urls"] == 2 and second["run"]["trimmed_bytes"] > 0
        assert site.hits == {f"/{i}.html": 2 if i in (2, 3) else 1 for i in range(12)} | {"/robots.txt": 2}
        urls = [r.rec_headers.get_header("WARC-Target-URI") for r in warc_records(tmp_path) if r.rec_type == "response"]
        assert sorted(urls) == sorted(site.url(f"/{i}.html") for i in range(12))  # each page once, files readable
        third = crawl(seeds, tmp_path, crawl_config())
        assert third["run"]["requests"] == 0 and third["fetched"] == 12
    finally:
        site.close()


def test_crawl_into_object_storage_resumes_and_reads_back_like_a_directory(
    s3: S3Server, tmp_path: Path, ray_local: None
) -> None:
    """``out`` as an ``s3://`` URI: the workers upload their WARC files, the driver writes the log as objects; a crawl
    whose log was lost removes the WARC objects no log names and fetches their pages again, each stored once; the
    crawl source reads the pages back from the bucket."""
    site = chain_site("127.0.0.10", 6)
    try:
        seeds, out = [site.url("/0.html")], s3.uri("crawls/chain")
        first = crawl(seeds, out, crawl_config())
        assert first["fetched"] == 6 and first["warc_files"]
        names = storage.list_files(out)
        assert set(first["warc_files"]) < set(names) and {"report.json", "skipped.jsonl"} < set(names)
        segments = [n for n in names if n.startswith("log-")]
        assert segments and len(read_log(out)[0]) == 6
        for name in segments:  # a crash after the WARC files were uploaded, before their outcomes were logged
            storage.remove(storage.join(out, name))
        second = crawl(seeds, out, crawl_config())
        assert second["run"]["resumed_urls"] == 0 and second["run"]["trimmed_bytes"] > 0
        assert site.hits == {f"/{i}.html": 2 for i in range(6)} | {"/robots.txt": 2}
        local = tmp_path / "copy"
        for name in storage.list_files(out):
            (local / name).parent.mkdir(parents=True, exist_ok=True)
            (local / name).write_bytes(storage.read_bytes(storage.join(out, name)))
        urls = [r.rec_headers.get_header("WARC-Target-URI") for r in warc_records(local) if r.rec_type == "response"]
        assert sorted(urls) == sorted(site.url(f"/{i}.html") for i in range(6))  # each page once
        assert crawl(seeds, out, crawl_config())["run"]["requests"] == 0
        source = SourceConfig(name="web", kind="crawl", lang="en", paths=[PathSpec(path=seeds[0])],
                              crawl=crawl_config(out=out))  # fmt: skip
        units = pa.Table.from_pylist([u.to_dict() for u in get_reader("crawl").units(source)])
        rows = read_units(units, {"web": source}, max_bytes=1_000_000).to_pylist()
        assert sorted(r["url"] for r in rows if r["reject"] is None) == sorted(urls)
    finally:
        site.close()


def test_cli_interrupted_then_run_again_completes_without_refetching(tmp_path: Path) -> None:
    # 30 s at 0.25 s per page: time to interrupt on a busy box (at 60 pages, once in a full suite run, the crawl
    # finished before Ctrl-C took effect)
    site = chain_site("127.0.0.8", 120)
    try:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(f"# one site\n{site.url('/0.html')}\n")
        out = tmp_path / "crawl"
        cmd = [sys.executable, "-m", "pipelines.crawl", "--seeds", str(seeds), "--out", str(out)]
        cmd += ["--allow", "127.0.0.8", "--delay", "0.25", "--workers", "1", "--contact", CONTACT]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(site.arrivals) >= 8:  # the server saw the crawl under way (the log may lag on a busy box)
                break
            time.sleep(0.05)
        while proc.poll() is None:  # Ctrl-C in the middle of the crawl (again, if one lands before the handler)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        proc.communicate(timeout=60)
        stored_before = {o.url for o in read_log(out)[0] if o.stored}
        assert len(stored_before) < 120  # stopped early; what it stored must not be fetched again
        hits_before = Counter(site.hits)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "120" in done.stderr and "resuming" in done.stderr
        for url in stored_before:
            assert site.hits[url.removeprefix(site.root)] == hits_before[url.removeprefix(site.root)] == 1
        report = json.loads((out / "report.json").read_text())
        assert report["fetched"] == 120 and report["failed"] == {} and report["skipped"] == {}
    finally:
        site.close()


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DATAENGINE_CRAWL_CONTACT", raising=False)
    args = ["--seeds", str(tmp_path / "none.txt"), "--out", str(tmp_path)]
    for extra, message in (
        ([], "--contact"),
        (["--contact", CONTACT], "seeds file not found"),
        (["--contact", CONTACT, "--max-pages", "0"], "--max-pages"),
    ):
        assert crawl_cli([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


# -- safety ----------------------------------------------------------------------------------------------------
def test_ssrf_guard_refuses_loopback_unless_allowed(sites: dict[str, Site], tmp_path: Path, ray_local: None) -> None:
    a = sites["a"]
    before = sum(a.hits.values())
    report = crawl([a.url("/")], tmp_path, crawl_config(allow=[]))
    assert report["failed"] == {"blocked_address": 1} and sum(a.hits.values()) == before
    guard = AddressGuard()
    for host in ("localhost", "127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "::ffff:127.0.0.1", "224.0.0.1"):
        with pytest.raises(BlockedAddress):
            guard.resolve(host, 80)
    assert guard.resolve("93.184.216.34", 80) == ("93.184.216.34", 80)
    assert AddressGuard(("127.0.0.0/8",)).resolve("127.0.0.9", 8080) == ("127.0.0.9", 8080)
    assert AddressGuard(("localhost",)).resolve("localhost", 80)[1] == 80
    mapped = AddressGuard(("127.0.0.1",), (("docs.example.org:80", "127.0.0.1:8000"),))
    assert mapped.resolve("docs.example.org", 80) == ("127.0.0.1", 8000)
    with pytest.raises(BlockedAddress):
        AddressGuard((), (("docs.example.org:80", "127.0.0.1:8000"),)).resolve("docs.example.org", 80)


# -- the pieces ------------------------------------------------------------------------------------------------
def test_url_normalisation() -> None:
    assert normalize("HTTP://Example.ORG:80/a/./b/../c?x=1#frag") == "http://example.org/a/c?x=1"
    assert normalize("https://example.org:443") == "https://example.org/"
    assert normalize("http://example.org:8080/%7euser/%e4%b8%ad") == "http://example.org:8080/~user/%E4%B8%AD"
    assert normalize("http://example.org/a b/ü") == "http://example.org/a%20b/%C3%BC"
    assert normalize("../x.html", "http://example.org/a/b/c.html") == "http://example.org/a/x.html"
    assert normalize("http://example.org/?b=2&a=1") == "http://example.org/?b=2&a=1"
    assert normalize("http://example.org/?b=2&a=1", sort_query=True) == "http://example.org/?a=1&b=2"
    assert normalize("http://bücher.example/") == "http://xn--bcher-kva.example/"
    assert normalize(" http://example.org/\n") == "http://example.org/"
    assert normalize("mailto:a@b.org") == "mailto:a@b.org"
    for bad in ("http://", "http://example.org:99999/", "http://[::1"):
        with pytest.raises(BadUrl):
            normalize(bad)


def test_scope_rules() -> None:
    seeds = ["https://docs.python.org/3/", "http://127.0.0.1:8000/"]
    host = Scope("same-host", seeds, [])
    assert host.allows("https://docs.python.org/2/") and host.allows("http://127.0.0.1:9/")
    assert not host.allows("https://www.python.org/")
    domain = Scope("same-domain", seeds, [])
    assert domain.allows("https://www.python.org/") and not domain.allows("https://python.com/")
    listed = Scope("list", seeds, ["debian.org"])
    assert listed.allows("https://www.debian.org/") and not listed.allows("https://docs.python.org/")
    with pytest.raises(ValueError, match="scope 'list'"):
        Scope("list", seeds, [])


def test_robots_is_parsed_leniently() -> None:
    malformed = RobotsTxt(200, "<html>oops</html>\nUser-agent: *\nDisalow: /typo\nDisallow: /private\nCrawl-delay: 3\n")
    assert not malformed.allows("http://h/private/x") and malformed.allows("http://h/public")
    assert not malformed.allows("http://h/typo")  # "Disalow" is read as Disallow, as Google's parser does
    assert malformed.delay() == 3.0
    assert RobotsTxt(404).allows("http://h/anything") and RobotsTxt(404).delay() == 0.0
    ours = RobotsTxt(200, "User-agent: dataengine-crawler\nDisallow: /\nRequest-rate: 1/5\n\nUser-agent: *\nAllow: /\n")
    assert not ours.allows("http://h/x") and ours.delay() == 5.0


def test_links_and_charsets() -> None:
    html = (
        '<html><head><base href="http://h/docs/"><link rel="Canonical" href="/main.html"></head><body>'
        '<a href="a.html#x">a</a><a href="a.html">again</a><a href="#top">self</a><area href="/map.html">'
        '<iframe src="frame.html"></iframe><img src="pic.png"><a href="http://[x">bad</a></body></html>'
    )
    links = extract_links(html, "http://h/page.html")
    assert links.outlinks == ["http://h/docs/a.html", "http://h/map.html", "http://h/docs/frame.html"]
    assert links.canonical == "http://h/main.html" and links.base == "http://h/docs/" and links.invalid == ["http://[x"]
    xhtml = '<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml"><a href="x.html">x</a>'
    assert extract_links(xhtml, "http://h/").outlinks == ["http://h/x.html"]
    assert extract_links("", "http://h/").outlinks == []
    assert detect(gbk_page()) == "gb18030"
    assert detect(b"<meta charset=gb2312><p>x</p>") == "gb18030"
    assert detect("é".encode("latin-1"), "text/html; charset=ISO-8859-1") == "cp1252"
    assert detect("中文".encode()[:-1]) == "utf-8"  # a character cut by truncation is still UTF-8
