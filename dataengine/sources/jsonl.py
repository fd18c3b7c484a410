"""``jsonl``: JSON-lines files (FineWeb, SkyPile, WuDao, The Stack style), optionally gzip/zstd/bz2-compressed.

The text field is configurable (``text_field``); a malformed line or a line without the field is a counted
rejection, and a truncated archive keeps the lines read before the damage.  Reading is bounded: a line longer
than ``max_file_bytes`` is skipped in 1 MiB pieces (never held whole), and an archive that inflates more than
``MAX_RATIO`` times its compressed size is a decompression bomb, abandoned there.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, empty_file, file_units, read_error
from dataengine.sources.files import open_input

COMPRESSED = (".gz", ".bz2", ".xz", ".lzma", ".zst")
MAX_RATIO = 100  # web text compresses 3-10x; zeros 1000x
BOMB_FLOOR = 64 << 20  # inflated bytes before the ratio is judged, so small files never trip it
CHUNK = 1 << 20


class DecompressionBomb(Exception):
    pass


class CountingReader(io.RawIOBase):
    """The raw side of reading a file: counts the bytes pulled from it, and serves them through ``readinto``.

    With that, ``io.BufferedReader`` gives any stream the bounded ``readline(size)`` the line loop needs: pyarrow's
    remote input streams (``s3://``, ``gs://``) have no ``readline`` of their own.  Closing it leaves ``raw`` open
    (the caller closes that).
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def decompressed(path: str, stream: Any) -> Any:
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=stream)
    if path.endswith(".bz2"):
        return bz2.BZ2File(stream)
    if path.endswith((".xz", ".lzma")):
        return lzma.LZMAFile(stream)
    if path.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(stream))  # for readline(size)
    return stream


def bounded_lines(stream: Any, counted: CountingReader, max_bytes: int, compressed: bool) -> Iterator[bytes | int]:
    """Each line (``bytes``), or for a line longer than ``max_bytes`` its length (``int``), skipped unheld.

    Raises ``DecompressionBomb`` once more than ``BOMB_FLOOR`` bytes have come out of a compressed file at more
    than ``MAX_RATIO`` times the bytes that went in.
    """
    inflated = 0

    def check(n: int) -> None:
        nonlocal inflated
        inflated += n
        if compressed and inflated > BOMB_FLOOR and inflated > MAX_RATIO * counted.count:
            raise DecompressionBomb(f"{inflated} bytes inflated from {counted.count} (over {MAX_RATIO}x)")

    while line := stream.readline(max_bytes + 1):
        check(len(line))
        if len(line) <= max_bytes or line.endswith(b"\n"):
            yield line
            continue
        length = len(line)
        while (rest := stream.readline(CHUNK)) and not rest.endswith(b"\n"):
            length += len(rest)
            check(len(rest))
        length += len(rest)
        check(len(rest))
        yield length


class JsonlReader:
    kind = "text"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        return file_units(source)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            meta = dict(specs[unit.spec].meta)
            lineno, documents = 0, 0
            compressed = unit.path.endswith(COMPRESSED)
            try:
                with open_input(unit.path) as raw_stream:
                    counted = CountingReader(raw_stream)
                    with (
                        decompressed(unit.path, counted) if compressed else io.BufferedReader(counted, CHUNK) as stream
                    ):
                        for lineno, line in enumerate(bounded_lines(stream, counted, max_bytes, compressed), 1):
                            where = f"{unit.path}#L{lineno}"
                            if isinstance(line, int):
                                documents += 1
                                detail = f"line of {line} bytes > {max_bytes}"
                                yield read_error(source, meta, where, self.kind, "too_large", detail)
                            elif line.strip():
                                documents += 1
                                yield self._line(line, where, source, meta, max_bytes)
            except DecompressionBomb as e:
                documents += 1
                yield read_error(source, meta, f"{unit.path}#after-L{lineno}", self.kind, "decompression_bomb", str(e))
            except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as e:
                documents += 1
                reason = "corrupt_archive" if compressed else "unreadable"
                where = f"{unit.path}#after-L{lineno}"
                yield read_error(source, meta, where, self.kind, reason, f"{type(e).__name__}: {e}")
            if not documents:
                yield empty_file(source, meta, unit.path, self.kind)

    def _line(self, line: bytes, where: str, source: SourceConfig, meta: dict, max_bytes: int) -> dict[str, Any]:
        if len(line) > max_bytes:
            return read_error(source, meta, where, self.kind, "too_large", f"{len(line)} bytes > {max_bytes}")
        try:
            record = json.loads(line)
        except RecursionError:  # valid JSON nested deeper than the parser's stack: refused, not a crash
            return read_error(source, meta, where, self.kind, "too_deep", "JSON nested too deeply to parse")
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer over Python's digit limit
            return read_error(source, meta, where, self.kind, "malformed_json", f"{type(e).__name__}: {e}")
        return record_row(record, where, source, meta, self.kind)


def record_row(record: Any, where: str, source: SourceConfig, meta: dict, kind: str) -> dict[str, Any]:
    """One row from a decoded record (a JSON object or a Parquet row) using the source's field names.

    A text field that is present but not a string (a number, a list) is ``text_not_string``, told apart from
    a missing (or null) one, since it points at a wrong ``text_field`` or a wrong schema rather than a gap.
    """
    if not isinstance(record, dict):
        return read_error(source, meta, where, kind, "malformed_record", f"expected an object, got {type(record)}")
    text = record.get(source.text_field)
    if text is None:
        return read_error(source, meta, where, kind, "missing_text_field", f"no string field {source.text_field!r}")
    if not isinstance(text, str):
        detail = f"field {source.text_field!r} is {type(text).__name__}"
        return read_error(source, meta, where, kind, "text_not_string", detail)
    url = str(record.get(source.url_field) or where) if source.url_field else where
    extra = {k: v for k, v in record.items() if k not in (source.text_field, source.url_field) and _scalar(v)}
    return doc_row(source=source.name, kind=kind, url=url, text=text, lang=source.lang, meta={**meta, **extra})


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (isinstance(value, str) and len(value) > 1000)
