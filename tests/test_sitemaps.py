"""Sitemaps and local sites: pages no link reaches are crawled through robots.txt's ``Sitemap:``, and a saved
site served by ``dataengine.crawl.site_server`` crawls to exactly its HTML files under its public host name.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
from warcio.archiveiterator import ArchiveIterator

from dataengine.config import CrawlConfig, PathSpec
from dataengine.crawl.crawler import crawl
from dataengine.crawl.sitemaps import MAX_BYTES, parse
from dataengine.crawl.store import read_log
from dataengine.crawl.warcfile import crawl_warcs
from dataengine.sources import list_units, read_units
from dataengine.sources.base import Unit
from dataengine.sources.sample import load_sample_spec, sample_sources
from tests.test_crawl import CONTACT, Reply, Site, page

XML = {"Content-Type": "application/xml"}


def urlset(*urls: str) -> bytes:
    locs = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'.encode()


def test_parse_reads_urlsets_indexes_gzip_and_entities_and_caps_bombs() -> None:
    assert parse(urlset("http://a.example/x?a=1&amp;b=2")) == (False, ["http://a.example/x?a=1&b=2"])
    index = b"<sitemapindex><sitemap><loc> http://a.example/s1.xml.gz </loc></sitemap></sitemapindex>"
    assert parse(gzip.compress(index)) == (True, ["http://a.example/s1.xml.gz"])
    assert parse(b"<urlset><url><loc>http://a.example/ok</loc><url><loc>broken") == (False, ["http://a.example/ok"])
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_BYTES + 2**20))  # 51 MB of nothing, 50 KB compressed
    assert parse(bomb) == (False, [])


def _site_with_sitemaps(other: Site) -> Site:
    """A host whose home page links to one page; the others are only in its (gzip, indexed) sitemaps."""
    routes: dict[str, Reply] = {"/": Reply(page("Home", ["/linked.html"])), "/linked.html": Reply(page("Linked", []))}
    for name in ("only-in-sitemap", "also-in-sitemap", "private/hidden"):
        routes[f"/{name}.html"] = Reply(page(name, []))
    site = Site("127.0.0.6", routes)
    site.routes["/robots.txt"] = Reply(
        f"User-agent: *\nDisallow: /private/\nSitemap: {site.url('/index.xml')}\nSitemap: {other.url('/x.xml')}\n"
        f"Sitemap: {site.url('/gone.xml')}\n".encode(),
        headers={"Content-Type": "text/plain"},
    )
    index = f"<sitemapindex><sitemap><loc>{site.url('/pages.xml.gz')}</loc></sitemap></sitemapindex>".encode()
    site.routes["/index.xml"] = Reply(index, headers=XML)
    listed = [site.url(p) for p in ("/only-in-sitemap.html", "/also-in-sitemap.html", "/linked.html")]
    listed += [site.url("/private/hidden.html"), other.url("/elsewhere.html"), "ftp://a.example/f"]
    site.routes["/pages.xml.gz"] = Reply(gzip.compress(urlset(*listed)), headers={"Content-Type": "application/gzip"})
    return site


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("sitemaps", [True, False])
def test_sitemap_pages_are_crawled_under_the_same_rules_as_links(tmp_path: Path, sitemaps: bool) -> None:
    other = Site("127.0.0.7", {"/x.xml": Reply(urlset("http://127.0.0.7/never.html"), headers=XML)})
    site = _site_with_sitemaps(other)
    try:
        config = CrawlConfig(contact=CONTACT, allow=["127.0.0.0/8"], delay=0, sitemaps=sitemaps)
        report = crawl([site.url("/")], tmp_path / "crawl", config)
    finally:
        site.close()
        other.close()
    outcomes = {o.url.removeprefix(site.root): o for o in read_log(tmp_path / "crawl")[0]}
    if not sitemaps:
        assert set(outcomes) == {"/", "/linked.html"} and "/index.xml" not in site.hits
        return
    fetched = {u for u, o in outcomes.items() if o.status == "fetched"}
    assert fetched == {"/", "/linked.html", "/only-in-sitemap.html", "/also-in-sitemap.html"}
    assert outcomes["/only-in-sitemap.html"].depth == 1
    assert outcomes["/private/hidden.html"].reason == "robots_disallowed"  # robots.txt rules apply to them too
    assert site.hits["/linked.html"] == 1  # listed and linked: fetched once
    assert report["skipped"]["out_of_scope"] >= 1 and report["skipped"]["unsupported_scheme"] >= 1
    # Sitemaps are site metadata: counted in the report, not pages; a sitemap on another host is not read.
    assert report["sitemaps"] == {"fetched": 2, "failed:http_404": 1, "off_host": 1, "urls": 6}
    assert other.hits["/x.xml"] == 0
    assert report["fetched"] == 4 and report["requests"] == len(outcomes) - 1  # the disallowed one: no request


@pytest.mark.usefixtures("ray_local")
def test_a_saved_site_crawls_to_exactly_its_html_files_under_its_host_name(tmp_path: Path) -> None:
    """The smallest site of the sample corpus, served as the default build serves it (no index links needed)."""
    web_en = {s.name: s for s in sample_sources(progress=False)}["web_en"]
    (seed,) = [p.path for p in web_en.path_specs() if p.meta["package"] == "maint-guide"]
    host = seed.split("/")[2]
    root = Path(web_en.crawl.local_sites[host])
    config = web_en.crawl.model_copy(update={"out": None, "local_sites": {host: str(root)}})
    report = crawl([seed], tmp_path / "crawl", config)
    files = {p.relative_to(root).as_posix() for p in root.rglob("*.html")}
    stored = set()
    for warc in crawl_warcs(tmp_path / "crawl"):
        with (tmp_path / "crawl" / warc).open("rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type == "response":
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    assert url.startswith(f"http://{host}/")  # the public name, whatever port served it
                    stored.add(url.removeprefix(f"http://{host}/"))
                    path = root / url.removeprefix(f"http://{host}/")
                    assert record.content_stream().read() == path.read_bytes()
    assert stored == files and report["fetched"] == len(files)
    assert report["hosts"][f"http://{host}"]["sitemaps"] == {"fetched": 1, "urls": len(files)}
    assert json.loads((tmp_path / "crawl" / "report.json").read_text())["fetched"] == len(files)
    # As a build source: one unit per stored page (read and extracted in parallel), plus the log's unit.
    source = web_en.model_copy(
        update={
            "paths": [PathSpec(path=seed, meta={"package": "maint-guide"})],
            "crawl": config.model_copy(update={"out": str(tmp_path / "crawl")}),
        }
    )
    units = [Unit(**u) for u in list_units([source])]
    assert len(units) == len(files) + 1 and sum(u.member == "warc" for u in units) == len(files)
    rows = read_units(pa.Table.from_pylist([u.to_dict() for u in units]), {"web_en": source}, 2**24).to_pylist()
    assert sorted(r["url"].removeprefix(f"http://{host}/") for r in rows) == sorted(files)
    assert all(r["reject"] is None and r["raw"] and json.loads(r["meta"])["package"] == "maint-guide" for r in rows)


def test_the_sample_crawls_its_sites_from_existing_start_pages() -> None:
    crawled, files = sample_sources(progress=False), sample_sources(progress=False, web="files")
    spec = load_sample_spec()
    for source, as_files, sites in zip(crawled[:2], files[:2], (spec.web_en, spec.web_zh), strict=True):
        assert source.kind == "crawl" and as_files.kind == "html_dir"
        assert source.crawl.delay == 0 and source.crawl.content_types == ["text/html", "application/xhtml+xml"]
        assert len(source.crawl.local_sites) == len(sites) == len(source.paths)
        for spec_, file_spec, site in zip(source.path_specs(), as_files.path_specs(), sites, strict=True):
            host = spec_.path.split("/")[2]
            assert host == f"{site.package}.sample.local" and file_spec.base_url == f"http://{host}/"
            assert source.crawl.local_sites[host] == file_spec.path
            assert (Path(file_spec.path) / site.index).is_file() and spec_.meta == file_spec.meta
