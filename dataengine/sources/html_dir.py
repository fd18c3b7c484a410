"""``html_dir``: a directory tree of saved HTML pages (a documentation site, a mirror)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dataengine.config import SourceConfig
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, read_error
from dataengine.sources.files import expand, file_size, open_input, relative

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")


class HtmlDirReader:
    kind = "html"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        for i, spec in enumerate(source.path_specs()):
            for path in expand(spec.path):
                if path.lower().endswith(HTML_SUFFIXES):
                    yield Unit(source=source.name, spec=i, path=path)

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        for unit in units:
            spec = specs[unit.spec]
            rel = relative(unit.path, spec.path) if unit.path != spec.path else unit.path.rsplit("/", 1)[-1]
            url = (spec.base_url.rstrip("/") + "/" + rel) if spec.base_url else unit.path
            meta = spec.meta
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
            yield doc_row(source=source.name, kind=self.kind, url=url, raw=raw, lang=source.lang, meta=meta)
