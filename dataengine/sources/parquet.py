"""``parquet``: Parquet files with a configurable text column, read batch by batch.

A zero-byte file or one without rows is ``empty_file``; a text value longer than ``max_file_bytes`` is
``too_large`` (as a JSON line would be); a text column of another type gives ``text_not_string`` per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.config import SourceConfig
from dataengine.sources.base import Unit, empty_file, file_units, read_error
from dataengine.sources.files import file_size, open_seekable
from dataengine.sources.jsonl import record_row


class ParquetReader:
    kind = "text"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        return file_units(source)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            meta = dict(specs[unit.spec].meta)
            row_no = 0
            try:
                if file_size(unit.path) == 0:
                    yield empty_file(source, meta, unit.path, self.kind)
                    continue
                with open_seekable(unit.path) as f:
                    pfile = pq.ParquetFile(f)
                    if source.text_field not in pfile.schema_arrow.names:
                        found = ", ".join(pfile.schema_arrow.names)
                        yield read_error(source, meta, unit.path, self.kind, "missing_text_field", f"columns: {found}")
                        continue
                    for batch in pfile.iter_batches(batch_size=1024):
                        for record in batch.to_pylist():
                            yield self._row(record, f"{unit.path}#row{row_no}", source, meta, max_bytes)
                            row_no += 1
                    if row_no == 0:
                        yield empty_file(source, meta, unit.path, self.kind)
            except (OSError, pa.ArrowException) as e:
                where = f"{unit.path}#after-row{row_no}"
                yield read_error(source, meta, where, self.kind, "corrupt_parquet", f"{type(e).__name__}: {e}")

    def _row(self, record: dict, where: str, source: SourceConfig, meta: dict, max_bytes: int) -> dict[str, Any]:
        text = record.get(source.text_field)
        if isinstance(text, str) and len(text) > max_bytes // 4 and (size := len(text.encode())) > max_bytes:
            return read_error(source, meta, where, self.kind, "too_large", f"{size} bytes > {max_bytes}")
        return record_row(record, where, source, meta, self.kind)
