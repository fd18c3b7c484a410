"""The quality stage: registered document rules, chosen per source domain (en, zh, code) by the config.

A rule is a callable ``rule(text) -> reason | None`` built from keyword thresholds.  The stage runs in a Ray
Data actor pool so rules with a model or a tokenizer load it once per worker.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from dataengine.config import FilterSpec, SourceConfig
from dataengine.filters.rules_code import CodeLines
from dataengine.filters.rules_text import CjkRatio, GopherQuality, MinLength
from dataengine.schema import reject_rows

Rule = Callable[[str], str | None]

FILTERS: dict[str, Callable[..., Rule]] = {
    "min_length": MinLength,
    "gopher_quality": GopherQuality,
    "cjk_ratio": CjkRatio,
    "code_lines": CodeLines,
}


def build_rule(spec: FilterSpec) -> Rule:
    try:
        factory = FILTERS[spec.name]
    except KeyError:
        raise ValueError(f"unknown filter {spec.name!r}; known filters: {', '.join(sorted(FILTERS))}") from None
    try:
        return factory(**spec.params)
    except TypeError as e:
        raise ValueError(f"filter {spec.name!r}: bad parameters {spec.params}: {e}") from None


class QualityStage:
    """Ray Data callable class: rejects rows with ``<filter name>:<reason>`` from the first rule that fails."""

    def __init__(self, filters: list[FilterSpec], sources: list[SourceConfig]) -> None:
        self.rules = [(spec.name, set(spec.domains), build_rule(spec)) for spec in filters]
        self.domain_of = {s.name: s.filter_domain for s in sources}

    def __call__(self, table: pa.Table) -> pa.Table:
        texts = table["text"].to_pylist()
        sources = table["source"].to_pylist()
        done = table["reject"].to_pylist()
        reasons: list[str | None] = []
        for text, source, prev in zip(texts, sources, done, strict=True):
            reason = None
            if prev is None:
                domain = self.domain_of[source]
                for name, domains, rule in self.rules:
                    if domain in domains:
                        failed = rule(text)
                        if failed:
                            reason = f"{name}:{failed}"
                            break
            reasons.append(reason)
        return reject_rows(table, reasons)
