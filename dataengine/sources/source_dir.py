"""``source_dir``: a checked-out source tree (or several), one document per file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, read_error
from dataengine.sources.files import expand, file_size, is_remote, open_input, relative


class SourceDirReader:
    kind = "code"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        for i, spec in enumerate(source.path_specs()):
            for path in expand(spec.path):
                yield Unit(source=source.name, spec=i, path=path)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            spec = specs[unit.spec]
            rel = relative(unit.path, spec.path) if unit.path != spec.path else os.path.basename(unit.path)
            repo = spec.meta.get("repo")
            url = f"{repo}/{rel}" if repo else unit.path
            meta = {**spec.meta, "path": rel}
            if not is_remote(unit.path) and os.path.islink(unit.path):
                yield read_error(source, meta, url, self.kind, "symlink", os.readlink(unit.path))
                continue
            try:
                size = file_size(unit.path)
                if size > max_bytes:
                    yield read_error(source, meta, url, self.kind, "too_large", f"{size} bytes > {max_bytes}")
                    continue
                with open_input(unit.path) as f:
                    raw = f.read()
            except OSError as e:
                yield read_error(source, meta, url, self.kind, "unreadable", str(e))
                continue
            yield doc_row(source=source.name, kind=self.kind, url=url, raw=raw, lang=None, meta=meta)
