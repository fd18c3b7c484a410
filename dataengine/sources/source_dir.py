"""``source_dir``: a checked-out source tree (or several), one document per file.

Licence: the source's ``license`` meta (the sample corpus sets it from Debian copyright files) as SPDX, with
``license_from: meta``, else ``NOASSERTION``; a file's own ``SPDX-License-Identifier`` header overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from dataengine.config import SourceConfig
from dataengine.licenses import UNKNOWN, declared, header_license
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, UnreadableFile, file_units, read_capped, read_error
from dataengine.sources.files import relative
from dataengine.storage import is_uri


class SourceDirReader:
    kind = "code"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        return file_units(source)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            spec = specs[unit.spec]
            rel = relative(unit.path, spec.path) if unit.path != spec.path else os.path.basename(unit.path)
            repo = spec.meta.get("repo")
            url = f"{repo}/{rel}" if repo else unit.path
            meta = {**spec.meta, "path": rel, **(declared(spec.meta) or UNKNOWN)}
            if not is_uri(unit.path) and os.path.islink(unit.path):
                yield read_error(source, meta, url, self.kind, "symlink", os.readlink(unit.path))
                continue
            try:
                raw = read_capped(unit.path, max_bytes)
            except UnreadableFile as e:
                yield read_error(source, meta, url, self.kind, e.reason, e.detail)
                continue
            meta |= header_license(raw)
            yield doc_row(source=source.name, kind=self.kind, url=url, raw=raw, lang=None, meta=meta)
