"""``warc``: WARC/WET files (Common Crawl style, gzipped or not), local or remote.

HTTP responses become HTML (or plain text) documents; WET ``conversion`` records are text already.  A
record that cannot be parsed, a truncated gzip member, or a non-200 response is a counted rejection.  After a
damaged record the reader seeks to the next record start (a gzip member header, or ``WARC/1.``) and goes on,
so the records before and after it are kept; a file with no record at all is ``empty_file``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, empty_file, file_units, read_error
from dataengine.sources.files import open_seekable

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/1."
WARC_ERRORS = (ArchiveLoadFailed, OSError, EOFError, ValueError, zlib.error)


class WarcReader:
    kind = "html"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        return file_units(source)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            meta = {**specs[unit.spec].meta, "warc": unit.path}
            try:
                stream = open_seekable(unit.path)
            except OSError as e:
                yield read_error(source, meta, unit.path, "html", "unreadable", f"{type(e).__name__}: {e}")
                continue
            with stream:
                yield from self.read_stream(stream, unit.path, source, meta, max_bytes)

    def read_stream(
        self, stream: IO[bytes], path: str, source: SourceConfig, meta: dict, max_bytes: int
    ) -> Iterator[dict]:
        """Every record of one file (or a piece of one cut at record starts); after a damaged record, resume at
        the next place a record can start."""
        magic = GZIP_MAGIC if stream.read(3) == GZIP_MAGIC else WARC_MAGIC
        pos: int | None = 0
        records, resyncing = 0, False
        while pos is not None:
            stream.seek(pos)
            it = ArchiveIterator(stream)
            before = records
            try:
                for record in it:
                    records += 1
                    resyncing = False
                    row = self._record(record, source, meta, max_bytes)
                    if row is not None:
                        yield row
                pos = None
            except WARC_ERRORS as e:
                bad = it.offset
                if not (resyncing and records == before):  # a false start while resyncing is not a new error
                    reason = self._damage(stream, bad, magic, e)
                    yield read_error(source, meta, f"{path}#offset-{bad}", "html", reason, f"{type(e).__name__}: {e}")
                    records += 1
                pos = _next_start(stream, bad + 1, magic)
                resyncing = True
        if records == 0:
            yield empty_file(source, meta, path, "html")

    @staticmethod
    def _damage(stream: IO[bytes], offset: int, magic: bytes, error: Exception) -> str:
        """``corrupt_gzip`` when the record's gzip member does not inflate, else ``corrupt_warc``."""
        if isinstance(error, EOFError):
            return "corrupt_gzip"
        if magic != GZIP_MAGIC:
            return "corrupt_warc"
        stream.seek(offset)
        try:
            zlib.decompressobj(31).decompress(stream.read(1 << 20), 1 << 16)
        except zlib.error:
            return "corrupt_gzip"
        return "corrupt_warc"

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


def _next_start(stream: IO[bytes], start: int, magic: bytes) -> int | None:
    """The offset of the next ``magic`` at or after ``start`` (read in 1 MiB pieces), or None at the end."""
    stream.seek(start)
    pos, tail = start, b""
    while chunk := stream.read(1 << 20):
        found = (tail + chunk).find(magic)
        if found >= 0:
            return pos - len(tail) + found
        tail = (tail + chunk)[-(len(magic) - 1) :]
        pos += len(chunk)
    return None
