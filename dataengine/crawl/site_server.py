"""Local directories served as web sites on 127.0.0.1, so a crawl can be run against saved sites.

The embedded default corpus crawls its documentation sites this way (``CrawlConfig.local_sites``), the crawl
benchmark serves the same sites to us and to wget, and tests serve pages they write.  Each site gets its own
port and keeps its public host name: the crawler connects to ``127.0.0.1:PORT`` through ``connect_to`` and
sends ``Host: docs.example``, so URLs, robots.txt and WARC records are those of the real site, whatever port
this run got.

A site behaves like static hosting (S3, GitHub Pages): files as they are, ``index.html`` for a directory,
404 for a directory without one (no generated listings: they are not documents of the site), and, unless
the directory has its own, a ``robots.txt`` that allows everything and names ``/sitemap.xml``, a sitemap of
every HTML page.  The servers run in one child process (HTTP/1.1 keep-alive), which exits with its parent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")


def sitemap_xml(root: Path, base_url: str) -> bytes:
    """A sitemap of every HTML file under ``root`` (symlinks not followed), sorted, as ``base_url`` + path."""
    pages = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in HTML_SUFFIXES and p.is_file() and not p.is_symlink()
    )
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    lines += [f"<url><loc>{escape(base_url + quote(page))}</loc></url>" for page in pages]
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode()


class SiteHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers
    disable_nagle_algorithm = True  # else headers and body in two writes stall 40 ms on delayed ACKs

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        time.sleep(self.server.latency)  # type: ignore[attr-defined]
        root = Path(self.directory)
        path = self.path.split("?", 1)[0]
        if path == "/robots.txt" and not (root / "robots.txt").exists():
            text = f"User-agent: *\nAllow: /\n\nSitemap: http://{self._host()}/sitemap.xml\n"
            return self._send(text.encode(), "text/plain; charset=utf-8")
        if path == "/sitemap.xml" and not (root / "sitemap.xml").exists():
            return self._send(sitemap_xml(root, f"http://{self._host()}/"), "application/xml")
        return super().do_GET()

    def list_directory(self, path: str) -> None:  # type: ignore[override]
        self.send_error(HTTPStatus.NOT_FOUND, "No index page")

    def log_message(self, *args: object) -> None:
        pass

    def _host(self) -> str:
        return self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serve_sites(sites: dict[str, str], latency: float = 0.0) -> Iterator[dict[str, str]]:
    """Serve each ``host -> directory`` on its own loopback port; yields ``connect_to`` entries for them.

    ``latency``: seconds each response waits, as a distant server's round trip would (benchmarks).
    """
    for host, directory in sites.items():
        if not Path(directory).is_dir():
            raise ValueError(f"local site {host!r}: {directory} is not a directory")
    args = [sys.executable, "-m", "dataengine.crawl.site_server", "--latency", str(latency), json.dumps(sites)]
    child = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the local site server exited ({child.wait()}) before listening")
        ports: dict[str, int] = json.loads(line)
        yield {f"{host}:80": f"127.0.0.1:{port}" for host, port in ports.items()}
    finally:
        if child.stdin is not None:
            child.stdin.close()  # the child's signal to stop
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-response (a crawler at its size cap, a killed crawl) is not our error."""


def main() -> None:
    """The child process: bind every site, print ``{host: port}``, serve until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m dataengine.crawl.site_server")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("sites", help='JSON object {"host": "directory", ...}')
    args = parser.parse_args()
    ports = {}
    for host, directory in json.loads(args.sites).items():
        server = _Server(("127.0.0.1", 0), partial(SiteHandler, directory=directory))
        server.latency = args.latency  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ports[host] = server.server_address[1]
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or died


if __name__ == "__main__":
    main()
