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
  line removal).  It never rejects; rules after it in the chain see the edited text.  The document's code
  spans are moved through the edit (``code_aware.text_edits``), so they still cover its code blocks;
- a text rule or an edit with ``batched = True`` also judges (edits) a whole batch at once:
  ``rule.judge_texts(texts) -> reasons`` (``rule.edit_texts(texts) -> [(text, meta fields)]``), each entry what
  the per-document call gives for that text: the Chinese chain counts a batch in a few numpy calls.

The stage runs a chain rule by rule over a batch's documents still kept (each document stops at its first
failing rule, as if judged alone), so a batched rule is called once per batch and view.

With ``code_page_share`` set (``pipeline.code_aware``), the rules of web sources judge views of the text
(``code_aware``): the prose with the code blocks masked out, or, on a page whose ``code_share`` is above it,
the code blocks alone, judged by the code rules.

The stage runs in a Ray Data actor pool so rules with a model or a tokenizer load it once per worker.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import pyarrow as pa

from dataengine.config import FilterSpec, SourceConfig
from dataengine.extract.spans import Span, code_share, remap, spans_array, spans_of
from dataengine.filters.code_aware import CHANGE_TYPE, CODE_AWARE_CHANGE, code_view, prose_view, text_edits
from dataengine.filters.rules_code import CodeFiles, CodeLines
from dataengine.filters.rules_en import C4Quality, FineWebQuality, GopherQuality, GopherRepetition
from dataengine.filters.rules_license import LicenseFilter
from dataengine.filters.rules_text import DATATROVE_RULES, CjkRatio, MinLength
from dataengine.filters.rules_zh import OpenccT2S, ZhBoilerplate, ZhQuality, ZhRepetition
from dataengine.filters.text_split import TextSplit
from dataengine.report.funnel import KEPT
from dataengine.schema import reject_rows, set_column

Rule = Callable[..., str | None]
Chain = list[tuple[str, Any, str]]
View = Callable[[str, list[Span]], str]
Verdict = tuple[str | None, str, str | None, list[Span]]  # (reason, text, meta, spans) of one document


class Doc(NamedTuple):
    """What the rules of a chain read of one document."""

    text: str
    spans: list[Span]
    url: str | None
    meta: str | None


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


def whole_text(text: str, spans: list[Span]) -> str:
    """The view of a code-blind chain: the text as it is."""
    return text


VIEWS: dict[str, View] = {"whole": whole_text, "prose": prose_view, "code": code_view}


class QualityStage:
    """Ray Data callable class: rejects rows with ``<filter name>:<reason>`` from the first rule that fails.

    ``code_page_share`` None judges every text whole (``pipeline.code_aware: false``); a share makes the stage
    code-aware for sources outside the code domain, and tags each row whose verdict that changes.
    """

    def __init__(
        self,
        filters: list[FilterSpec],
        sources: list[SourceConfig],
        english_rules: str = "fast",
        code_page_share: float | None = None,
    ) -> None:
        self.rules = [(spec.name, set(spec.domains), build_rule(spec, english_rules)) for spec in filters]
        by_domain = {domain: self.chain(domain) for domain in {s.filter_domain for s in sources}}
        self.chains = {s.name: licence_chain(s) + by_domain[s.filter_domain] for s in sources}
        self.code_page_share = code_page_share
        aware = [s.name for s in sources if s.filter_domain != "code"] if code_page_share is not None else []
        # a page that is mostly code: its own chain's edits, then the code chain's rules on the text
        code_rules = [rule for rule in self.chain("code") if rule[2] == "text"]
        self.code_chains = {name: [r for r in self.chains[name] if r[2] == "edit"] + code_rules for name in aware}

    def chain(self, domain: str) -> Chain:
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
        spans = spans_of(table["code_spans"])
        shares = table["code_share"].to_pylist()
        details: list[str | None] = [None] * len(texts)
        views: dict[tuple[str, str], list[int]] = defaultdict(list)  # (source, view) -> its rows
        for i, (source, prev) in enumerate(zip(sources, done, strict=True)):
            if prev is None:
                view = "whole"
                if source in self.code_chains and spans[i]:
                    view = "prose"
                    if shares[i] > self.code_page_share:
                        view = "code"
                        details[i] = f"code page: code_share {shares[i]:.2f} > {self.code_page_share}, code rules"
                views[source, view].append(i)
        reasons: list[str | None] = [None] * len(texts)
        changes: list[dict[str, str] | None] = [None] * len(texts)
        edited = False
        for (source, view), rows in views.items():
            docs = [Doc(texts[i], spans[i], urls[i], metas[i]) for i in rows]
            chain = self.code_chains[source] if view == "code" else self.chains[source]
            verdicts = self.judge_all(chain, docs, VIEWS[view])
            blind = self.judge_all(self.chains[source], docs) if view != "whole" else verdicts
            for i, (reason, text, meta, new_spans), other in zip(rows, verdicts, blind, strict=True):
                reasons[i] = reason
                if other[0] != reason:
                    changes[i] = {"code_blind": other[0] or KEPT, "code_aware": reason or KEPT, "view": view}
                if text != texts[i] or meta != metas[i]:
                    texts[i], metas[i], spans[i], edited = text, meta, new_spans, True
        if edited:
            table = set_column(table, "text", pa.array(texts, pa.string()))
            table = set_column(table, "meta", pa.array(metas, pa.string()))
            table = set_column(table, "code_spans", spans_array(spans))
            new_shares = [code_share(t, s) for t, s in zip(texts, spans, strict=True)]
            table = set_column(table, "code_share", pa.array(new_shares, pa.float32()))
        if self.code_page_share is not None:
            table = set_column(table, CODE_AWARE_CHANGE, pa.array(changes, CHANGE_TYPE))
        details = [detail if reason else None for reason, detail in zip(reasons, details, strict=True)]
        return reject_rows(table, reasons, details)

    @staticmethod
    def judge_all(chain: Chain, docs: list[Doc], view: View = whole_text) -> list[Verdict]:
        """``(reason, text, meta, spans)`` per document: its first failing rule's reason, after the edits before it;
        each judging rule sees ``view`` of the text (the whole text, its prose or its code).  The chain runs rule by
        rule over the documents still kept, so a ``batched`` rule is called once for all of them."""
        texts, spans = [doc.text for doc in docs], [doc.spans for doc in docs]
        seen: list[str | None] = [None] * len(docs)  # ``view`` of the current text, made again after an edit
        reasons: list[str | None] = [None] * len(docs)
        updates: list[dict[str, Any]] = [{} for _ in docs]
        metas: list[dict[str, Any] | None] = [None] * len(docs)
        splits: list[TextSplit | None] = [None] * len(docs)
        kept = list(range(len(docs)))
        for name, rule, how in chain:
            if not kept:
                break
            batched = getattr(rule, "batched", False)
            if how == "edit":
                olds = [texts[i] for i in kept]
                results = rule.edit_texts(olds) if batched else [rule.edit(text) for text in olds]
                for i, old, (new, fields) in zip(kept, olds, results, strict=True):
                    spans[i] = remap(spans[i], text_edits(old, new)) if spans[i] else spans[i]
                    texts[i], seen[i] = new, None
                    updates[i].update(fields)
                continue
            for i in kept:
                seen[i] = view(texts[i], spans[i]) if seen[i] is None else seen[i]
            if how == "text" and batched:
                failed = rule.judge_texts([seen[i] for i in kept])
            else:
                failed = [judge_one(rule, how, seen[i], docs[i], metas, splits, i) for i in kept]
            for i, reason in zip(kept, failed, strict=True):
                reasons[i] = f"{name}:{reason}" if reason else None
            kept = [i for i in kept if reasons[i] is None]
        verdicts = []
        for i, doc in enumerate(docs):
            meta_json = doc.meta
            if updates[i]:
                meta = metas[i] if metas[i] is not None else json.loads(meta_json or "{}")
                meta_json = json.dumps({**meta, **updates[i]}, ensure_ascii=False, sort_keys=True)
            verdicts.append((reasons[i], texts[i], meta_json, spans[i]))
        return verdicts


def judge_one(
    rule: Any, how: str, seen: str, doc: Doc, metas: list[dict[str, Any] | None], splits: list[TextSplit | None], i: int
) -> str | None:
    """One document's verdict from a per-document rule; ``metas`` and ``splits`` hold each document's parsed meta
    and :class:`TextSplit`, made once per document (a split again after an edit) and shared by its rules."""
    if how == "text":
        return rule(seen)
    if how == "split":
        if splits[i] is None or splits[i].text is not seen:
            splits[i] = TextSplit(seen)
        return rule.judge(splits[i])
    if metas[i] is None:
        metas[i] = json.loads(doc.meta or "{}")
    return rule(seen, doc_path(metas[i], doc.url)) if how == "path" else rule(seen, metas[i])
