"""The quality stage: registered document rules, chosen per source domain (en, zh, code) by the config.

A rule is a callable ``rule(text) -> reason | None`` built from keyword thresholds.  Two optional kinds
extend it without changing plain rules:

- a rule with ``needs_path = True`` is called ``rule(text, path)``, the path being ``meta.path`` (a file's
  path in its repository) or else the url: code rules judge lock files and vendored directories by name;
- a rule with ``needs_meta = True`` is called ``rule(text, meta)`` with the document's meta as a dict: the
  licence filter judges ``meta.license``;
- a rule with ``needs_split = True`` (the English chain) is called ``rule.judge(split)`` with the document's
  :class:`TextSplit`, made once per document and shared by every such rule (words, lines, n-grams);
- a rule with ``edits_text = True`` is a text transform: ``rule.edit(text) -> (text, meta fields)``; the
  stage keeps the new text and merges the fields into ``meta`` (Chinese script normalisation, boilerplate
  line removal).  It never rejects; rules after it in the chain see the edited text.

The stage runs in a Ray Data actor pool so rules with a model or a tokenizer load it once per worker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from dataengine.config import FilterSpec, SourceConfig
from dataengine.filters.rules_code import CodeFiles, CodeLines
from dataengine.filters.rules_en import C4Quality, FineWebQuality, GopherQuality, GopherRepetition
from dataengine.filters.rules_license import LicenseFilter
from dataengine.filters.rules_text import DATATROVE_RULES, CjkRatio, MinLength
from dataengine.filters.rules_zh import OpenccT2S, ZhBoilerplate, ZhQuality, ZhRepetition
from dataengine.filters.text_split import TextSplit
from dataengine.schema import reject_rows, set_column

Rule = Callable[..., str | None]

FILTERS: dict[str, Callable[..., Any]] = {
    "min_length": MinLength,
    "gopher_quality": GopherQuality,
    "gopher_repetition": GopherRepetition,
    "c4_quality": C4Quality,
    "fineweb_quality": FineWebQuality,
    "cjk_ratio": CjkRatio,
    "opencc_t2s": OpenccT2S,
    "zh_boilerplate": ZhBoilerplate,
    "zh_quality": ZhQuality,
    "zh_repetition": ZhRepetition,
    "code_files": CodeFiles,
    "code_lines": CodeLines,
    "license": LicenseFilter,  # keep code under allowed licences only; off by default
}


def build_rule(spec: FilterSpec, english_rules: str = "fast") -> Any:
    """The rule ``spec`` names; ``english_rules: datatrove`` swaps the English chain for datatrove's own classes."""
    if english_rules not in ("fast", "datatrove"):
        raise ValueError(f"english_rules must be 'fast' or 'datatrove', got {english_rules!r}")
    try:
        factory = DATATROVE_RULES[spec.name] if english_rules == "datatrove" else FILTERS[spec.name]
    except KeyError:
        if spec.name in FILTERS:
            return build_rule(spec)
        hint = " (the quality score is thresholded by `quality_model: {min_score: {en: 0.2}}`)" * (
            spec.name == "quality_model"
        )
        raise ValueError(f"unknown filter {spec.name!r}{hint}; known filters: {', '.join(sorted(FILTERS))}") from None
    try:
        return factory(**spec.params)
    except TypeError as e:
        raise ValueError(f"filter {spec.name!r}: bad parameters {spec.params}: {e}") from None


def doc_path(meta: dict[str, Any], url: str | None) -> str:
    return str(meta.get("path") or url or "")


def licence_chain(source: SourceConfig) -> list[tuple[str, Any, str]]:
    """A source's ``licenses:`` setting as the first rule of its chain (cheapest, and it decides alone)."""
    return [("license", LicenseFilter(allow=source.licenses), "meta")] if source.licenses else []


class QualityStage:
    """Ray Data callable class: rejects rows with ``<filter name>:<reason>`` from the first rule that fails."""

    def __init__(self, filters: list[FilterSpec], sources: list[SourceConfig], english_rules: str = "fast") -> None:
        self.rules = [(spec.name, set(spec.domains), build_rule(spec, english_rules)) for spec in filters]
        by_domain = {domain: self.chain(domain) for domain in {s.filter_domain for s in sources}}
        self.chains = {s.name: licence_chain(s) + by_domain[s.filter_domain] for s in sources}

    def chain(self, domain: str) -> list[tuple[str, Any, str]]:
        """``(name, rule, how)`` for one domain's rules; ``how``: text, path, meta, split or edit."""
        kinds = {"edit": "edits_text", "meta": "needs_meta", "path": "needs_path", "split": "needs_split"}  # first wins
        return [
            (name, rule, next((how for how, flag in kinds.items() if getattr(rule, flag, False)), "text"))
            for name, domains, rule in self.rules
            if domain in domains
        ]

    def __call__(self, table: pa.Table) -> pa.Table:
        texts = table["text"].to_pylist()
        sources = table["source"].to_pylist()
        done = table["reject"].to_pylist()
        urls = table["url"].to_pylist()
        metas = table["meta"].to_pylist()
        reasons: list[str | None] = []
        edited = False
        for i, (source, prev) in enumerate(zip(sources, done, strict=True)):
            reason = None
            if prev is None:
                reason, text, meta = self.judge(self.chains[source], texts[i], urls[i], metas[i])
                if text != texts[i] or meta != metas[i]:
                    texts[i], metas[i], edited = text, meta, True
            reasons.append(reason)
        if edited:
            table = set_column(table, "text", pa.array(texts, pa.string()))
            table = set_column(table, "meta", pa.array(metas, pa.string()))
        return reject_rows(table, reasons)

    @staticmethod
    def judge(
        chain: list[tuple[str, Any, str]], text: str, url: str | None, meta_json: str | None
    ) -> tuple[str | None, str, str | None]:
        """``(reason, text, meta)`` for one document: the first failing rule's reason, after the edits before it."""
        meta: dict[str, Any] | None = None
        split: TextSplit | None = None
        updates: dict[str, Any] = {}
        reason = None
        for name, rule, how in chain:
            if how == "text":
                failed = rule(text)
            elif how == "split":
                if split is None or split.text is not text:  # one split per document (after any edit)
                    split = TextSplit(text)
                failed = rule.judge(split)
            elif how == "path":
                meta = meta if meta is not None else json.loads(meta_json or "{}")
                failed = rule(text, doc_path(meta, url))
            elif how == "meta":
                meta = meta if meta is not None else json.loads(meta_json or "{}")
                failed = rule(text, meta)
            else:
                text, fields = rule.edit(text)
                updates.update(fields)
                continue
            if failed:
                reason = f"{name}:{failed}"
                break
        if updates:
            meta = meta if meta is not None else json.loads(meta_json or "{}")
            meta_json = json.dumps({**meta, **updates}, ensure_ascii=False, sort_keys=True)
        return reason, text, meta_json
