"""``html_dir``: a directory tree of saved HTML pages (a documentation site, a mirror)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, UnreadableFile, file_units, read_capped, read_error
from dataengine.sources.files import relative

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")


class HtmlDirReader:
    kind = "html"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        return file_units(source, keep=lambda path: path.lower().endswith(HTML_SUFFIXES))

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            spec = specs[unit.spec]
            rel = relative(unit.path, spec.path) if unit.path != spec.path else unit.path.rsplit("/", 1)[-1]
            url = (spec.base_url.rstrip("/") + "/" + rel) if spec.base_url else unit.path
            meta = spec.meta
            try:
                raw = read_capped(unit.path, max_bytes)
            except UnreadableFile as e:
                yield read_error(source, meta, url, self.kind, e.reason, e.detail)
                continue
            yield doc_row(source=source.name, kind=self.kind, url=url, raw=raw, lang=source.lang, meta=meta)
