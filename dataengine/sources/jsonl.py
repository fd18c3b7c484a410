"""``jsonl``: JSON-lines files (FineWeb, SkyPile, WuDao, The Stack style), optionally gzip/zstd/bz2-compressed.

The text field is configurable (``text_field``); a malformed line or a line without the field is a counted
rejection, and a truncated archive keeps the lines read before the damage.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
from collections.abc import Iterator
from typing import Any

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, file_units, read_error
from dataengine.sources.files import open_input


def decompressed(path: str, stream: io.BufferedIOBase) -> io.BufferedIOBase:
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=stream)
    if path.endswith(".bz2"):
        return bz2.BZ2File(stream)
    if path.endswith((".xz", ".lzma")):
        return lzma.LZMAFile(stream)
    if path.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(stream)
    return stream


class JsonlReader:
    kind = "text"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        return file_units(source)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            meta = dict(specs[unit.spec].meta)
            lineno = 0
            try:
                with open_input(unit.path) as raw_stream, decompressed(unit.path, raw_stream) as stream:
                    for lineno, line in enumerate(stream, start=1):
                        if line.strip():
                            yield self._line(line, f"{unit.path}#L{lineno}", source, meta, max_bytes)
            except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
                reason = "corrupt_archive" if unit.path.endswith((".gz", ".bz2", ".xz", ".zst")) else "unreadable"
                where = f"{unit.path}#after-L{lineno}"
                yield read_error(source, meta, where, self.kind, reason, f"{type(e).__name__}: {e}")

    def _line(self, line: bytes, where: str, source: SourceConfig, meta: dict, max_bytes: int) -> dict[str, Any]:
        if len(line) > max_bytes:
            return read_error(source, meta, where, self.kind, "too_large", f"{len(line)} bytes > {max_bytes}")
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return read_error(source, meta, where, self.kind, "malformed_json", str(e))
        return record_row(record, where, source, meta, self.kind)


def record_row(record: Any, where: str, source: SourceConfig, meta: dict, kind: str) -> dict[str, Any]:
    """One row from a decoded record (a JSON object or a Parquet row) using the source's field names."""
    if not isinstance(record, dict):
        return read_error(source, meta, where, kind, "malformed_record", f"expected an object, got {type(record)}")
    text = record.get(source.text_field)
    if not isinstance(text, str):
        return read_error(source, meta, where, kind, "missing_text_field", f"no string field {source.text_field!r}")
    url = str(record.get(source.url_field) or where) if source.url_field else where
    extra = {k: v for k, v in record.items() if k not in (source.text_field, source.url_field) and _scalar(v)}
    return doc_row(source=source.name, kind=kind, url=url, text=text, lang=source.lang, meta={**meta, **extra})


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (isinstance(value, str) and len(value) > 1000)
