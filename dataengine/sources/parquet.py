"""``parquet``: Parquet files with a configurable text column, read batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.config import SourceConfig
from dataengine.sources.base import Unit, file_units, read_error
from dataengine.sources.files import open_input
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
                with open_input(unit.path) as f:
                    pfile = pq.ParquetFile(f)
                    if source.text_field not in pfile.schema_arrow.names:
                        found = ", ".join(pfile.schema_arrow.names)
                        yield read_error(source, meta, unit.path, self.kind, "missing_text_field", f"columns: {found}")
                        continue
                    for batch in pfile.iter_batches(batch_size=1024):
                        for record in batch.to_pylist():
                            yield record_row(record, f"{unit.path}#row{row_no}", source, meta, self.kind)
                            row_no += 1
            except (OSError, pa.ArrowException) as e:
                where = f"{unit.path}#after-row{row_no}"
                yield read_error(source, meta, where, self.kind, "corrupt_parquet", f"{type(e).__name__}: {e}")
