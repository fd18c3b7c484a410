"""``warc``: WARC/WET files (Common Crawl style, gzipped or not), local or remote.

HTTP responses become HTML (or plain text) documents; WET ``conversion`` records are text already.  A
record that cannot be parsed, a truncated gzip member, or a non-200 response is a counted rejection; the
records before a corrupt one are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, file_units, read_error
from dataengine.sources.files import open_input

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


class WarcReader:
    kind = "html"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        return file_units(source)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            meta = {**specs[unit.spec].meta, "warc": unit.path}
            n = 0
            try:
                with open_input(unit.path) as stream:
                    for record in ArchiveIterator(stream):
                        row = self._record(record, source, meta, max_bytes)
                        if row is not None:
                            n += 1
                            yield row
            except (ArchiveLoadFailed, OSError, EOFError, ValueError) as e:
                reason = "corrupt_gzip" if "gzip" in repr(e).lower() or isinstance(e, EOFError) else "corrupt_warc"
                where = f"{unit.path}#after-record-{n}"
                yield read_error(source, meta, where, "html", reason, f"{type(e).__name__}: {e}")

    def _record(self, record: Any, source: SourceConfig, meta: dict, max_bytes: int) -> dict[str, Any] | None:
        rtype = record.rec_type
        url = record.rec_headers.get_header("WARC-Target-URI") or ""
        if rtype == "conversion":
            raw = record.content_stream().read(max_bytes + 1)
            if _truncated(record):
                return read_error(source, meta, url, "text", "truncated_record", "record shorter than its length")
            text = raw[:max_bytes].decode("utf-8", "replace")
            return doc_row(source=source.name, kind="text", url=url, text=text, lang=source.lang, meta=meta)
        if rtype not in ("response", "resource"):
            return None  # request, metadata, warcinfo records are not documents
        rec_meta = {**meta, "warc_date": record.rec_headers.get_header("WARC-Date")}
        if rtype == "response" and record.http_headers is not None:
            status = record.http_headers.get_statuscode()
            ctype = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
            rec_meta.update(http_status=int(status or 0), content_type=ctype)
            if status != "200":
                return read_error(source, rec_meta, url, "html", f"http_{status}", f"HTTP status {status}")
        else:
            ctype = (record.rec_headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
            rec_meta.update(content_type=ctype)
        if ctype and ctype not in TEXT_TYPES:
            return read_error(source, rec_meta, url, "html", "unsupported_content_type", ctype)
        raw = record.content_stream().read(max_bytes + 1)
        if _truncated(record):
            return read_error(source, rec_meta, url, "html", "truncated_record", "record shorter than its length")
        if len(raw) > max_bytes:
            return read_error(source, rec_meta, url, "html", "too_large", f"body > {max_bytes} bytes")
        kind = "text" if ctype == "text/plain" else "html"
        if kind == "text":
            text = raw.decode("utf-8", "replace")
            return doc_row(source=source.name, kind=kind, url=url, text=text, lang=source.lang, meta=rec_meta)
        return doc_row(source=source.name, kind=kind, url=url, raw=raw, lang=source.lang, meta=rec_meta)


def _truncated(record: Any) -> bool:
    """Drain what is left of the record; a record cut short (a truncated file) leaves bytes unaccounted for.

    warcio ends iteration quietly at a truncated gzip member, so this is how a cut last record is caught.
    """
    while record.raw_stream.read(1 << 16):
        pass
    return getattr(record.raw_stream, "limit", 0) > 0
