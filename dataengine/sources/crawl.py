"""``crawl``: the seed URLs (``paths``) are crawled when the build lists its units, then read as WARC.

The crawl runs on the driver with Ray actors (see ``dataengine.crawl``) into ``crawl.out`` (default
``<cache>/crawl/<source>-<hash of the seeds>``), so a second build reuses the finished crawl and a killed
one resumes it.  Its WARC files go through the ``warc`` reader, so extraction is what any WARC gets.

Every URL the crawler set out to visit becomes exactly one row: a page from the WARC files, or a rejection
``crawl:<reason>`` (``crawl:robots_disallowed``, ``crawl:timeout``, ``crawl:http_404``, ``crawl:redirected``...).
URLs it never meant to visit (out of scope, another scheme, past the page or depth limit) are counted in
the crawl's ``report.json`` and ``skipped.jsonl``, not as documents.  A page keeps its seed's ``meta``
(license, package...) plus what the crawl learnt: depth, canonical URL, charset, truncation; HTML not
in UTF-8 is transcoded with the charset the crawler determined (the HTTP header first, as browsers do).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from dataengine import storage
from dataengine.cache import cache_dir
from dataengine.config import PathSpec, SourceConfig
from dataengine.crawl.crawler import crawl
from dataengine.crawl.frontier import FETCHED, REDIRECTED
from dataengine.crawl.store import LOG, read_log
from dataengine.crawl.warcfile import crawl_warcs
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, read_error
from dataengine.sources.warc import WarcReader

CRAWL_FIELDS = ("depth", "canonical", "charset", "truncated", "http_status")


def crawl_dir(source: SourceConfig) -> str:
    """``crawl.out`` (a path every node sees, or an object-store URI), else a directory in the driver's cache."""
    assert source.crawl is not None
    if source.crawl.out:
        return source.crawl.out
    seeds = hashlib.sha256("\n".join(spec.path for spec in source.path_specs()).encode()).hexdigest()[:12]
    return str(cache_dir() / "crawl" / f"{source.name}-{seeds}")


class CrawlReader:
    kind = "html"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        if source.crawl is None:
            raise ValueError(f"source {source.name!r} of kind crawl needs a `crawl:` section (contact, limits)")
        out = crawl_dir(source)
        crawl([spec.path for spec in source.path_specs()], out, source.crawl)
        outcomes, _ = read_log(out)
        for name in crawl_warcs(out):
            path = storage.join(out, name)
            # One unit per stored page, as html_dir has one per file: the pages of one WARC file are read and
            # extracted in parallel.  A page's records end where the log says; the first piece holds warcinfo.
            ends = sorted(o.warc_end for o in outcomes if o.warc == name and o.warc_end is not None)
            if not ends or ends[-1] < storage.size(path):
                ends.append(-1)  # records no log line names (none, after a resume's trim): read, not lost
            for start, end in zip([0, *ends[:-1]], ends, strict=True):
                yield Unit(source=source.name, spec=0, path=path, member="warc", offset=start, end=end)
        yield Unit(source=source.name, spec=0, path=storage.join(out, LOG), member="log")

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            if unit.member == "log":
                yield from self._not_stored(unit.path.rsplit("/", 1)[0], source, specs)
            else:
                yield from self._stored(unit, source, specs, max_bytes)

    def _not_stored(self, out: str, source: SourceConfig, specs: list[PathSpec]) -> Iterator[dict[str, Any]]:
        """A rejection row for every URL the crawler decided without keeping a response."""
        outcomes, _ = read_log(out)
        for o in outcomes:
            if o.stored:
                continue
            meta = {**specs[o.seed].meta, "depth": o.depth}
            yield doc_row(
                source=source.name,
                kind=self.kind,
                url=o.url,
                lang=source.lang,
                meta=meta,
                reject=f"crawl:{o.reason}",
                reject_detail=o.detail[:500] or None,
            )

    def _stored(self, unit: Unit, source: SourceConfig, specs: list[PathSpec], max_bytes: int) -> Iterator[dict]:
        """Rows of the warc reader on the unit's piece of a WARC file, with the seed's meta and the crawl's
        metadata record joined by URL."""
        try:
            with storage.open_input(unit.path) as f:
                f.seek(unit.offset)
                piece = f.read() if unit.end < 0 else f.read(unit.end - unit.offset)
        except OSError as e:
            meta = {**specs[0].meta, "warc": unit.path}
            yield read_error(source, meta, unit.path, "html", "unreadable", f"{type(e).__name__}: {e}")
            return
        crawled = _metadata_records(piece)
        name = f"{unit.path}#offset-{unit.offset}"
        for row in WarcReader().read_stream(io.BytesIO(piece), name, source, {"warc": unit.path}, max_bytes):
            info = crawled.get(row["url"])
            if info is None:  # a read error of the file itself (the warc reader names it)
                yield row
                continue
            meta = {**specs[info.get("seed", 0)].meta, **json.loads(row["meta"])}
            meta.update({k: info[k] for k in CRAWL_FIELDS if k in info})
            reject, detail = row["reject"], row["reject_detail"]
            if info["status"] != FETCHED:
                reject = "crawl:redirected" if info["status"] == REDIRECTED else f"crawl:{info['reason']}"
                detail = info.get("detail") or detail
            raw, charset = row["raw"], info.get("charset")
            if raw is not None and charset and charset not in ("utf-8", "ascii") and row["kind"] == "html":
                raw = raw.decode(charset, errors="replace").encode("utf-8")
            yield doc_row(
                source=source.name,
                kind=row["kind"],
                url=row["url"],
                raw=raw,
                text=row["text"],
                lang=row["lang"],
                meta=meta,
                reject=reject,
                reject_detail=detail,
            )


def _metadata_records(piece: bytes) -> dict[str, dict[str, Any]]:
    """URL -> the crawl's metadata record (JSON) of each stored response in a piece of a WARC file."""
    found: dict[str, dict[str, Any]] = {}
    try:
        for record in ArchiveIterator(io.BytesIO(piece)):
            if record.rec_type == "metadata" and record.content_type == "application/json":
                found[record.rec_headers.get_header("WARC-Target-URI")] = json.loads(record.content_stream().read())
    except (ArchiveLoadFailed, OSError, EOFError, ValueError):
        pass  # the warc reader reads the same file next and counts what is wrong with it
    return found
