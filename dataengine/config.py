"""Typed configuration for sources, pipeline stages and mixes, loaded from YAML.

A sources file names the corpora; a mix file refers to them by name and sets token shares.  The
``pipeline`` section of a mix (all optional) lists the filters and their thresholds, so a new
threshold is a YAML edit, never a code change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MIXES_DIR = PACKAGE_ROOT / "pipelines" / "mixes"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PathSpec(Strict):
    """One input location with metadata that every document read from it carries (repo, license...)."""

    path: str
    meta: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = None  # html_dir: url = base_url + path relative to ``path``


class CrawlConfig(Strict):
    """How a ``crawl`` source (and ``python -m pipelines.crawl``) crawls: limits, manners, safety.

    The defaults are for the public internet: one request per host per second, robots.txt obeyed, no
    private or loopback address unless ``allow`` names it.  ``contact`` goes into the User-Agent so that a
    webmaster can reach whoever runs the crawl.
    """

    contact: str  # an e-mail address or URL
    out: str | None = None  # WARC files, log, report (default: <cache>/crawl/<source>-<hash of the seeds>)
    max_pages: int | None = Field(default=None, ge=1)
    max_depth: int | None = Field(default=None, ge=0)
    scope: Literal["same-host", "same-domain", "list"] = "same-host"
    scope_hosts: list[str] = Field(default_factory=list)  # scope "list": these hosts (and their subdomains)
    allow: list[str] = Field(default_factory=list)  # host names, IPs or CIDRs exempt from the private-address guard
    connect_to: dict[str, str] = Field(default_factory=dict)  # "host:port" -> "ip:port" (like curl --connect-to)
    local_sites: dict[str, str] = Field(default_factory=dict)  # host -> directory served on 127.0.0.1 for the crawl
    workers: int | None = Field(default=None, ge=1)  # crawl actors (default: the cluster's CPUs)
    delay: float = Field(default=1.0, ge=0)  # minimum seconds between two requests to one host
    host_concurrency: int = Field(default=1, ge=1)  # requests in flight to one host
    max_crawl_delay: float = Field(default=30.0, ge=0)  # a robots.txt Crawl-delay is honoured up to this
    connect_timeout: float = Field(default=10.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)  # whole request, body included
    retries: int = Field(default=2, ge=0)  # on 5xx, 429, timeouts and dropped connections
    backoff: float = Field(default=1.0, ge=0)  # first retry wait; doubles each time, capped by backoff_cap
    backoff_cap: float = Field(default=30.0, ge=0)
    max_redirects: int = Field(default=5, ge=0)
    max_body_bytes: int = Field(default=2**20, ge=1)  # longer bodies are truncated (WARC-Truncated: length)
    content_types: list[str] = Field(default_factory=lambda: ["text/html", "application/xhtml+xml", "text/plain"])
    sort_query: bool = False  # normalise ?b=1&a=2 to ?a=2&b=1
    sitemaps: bool = True  # also queue the pages listed by the sitemaps a host's robots.txt names
    robots_retry_delay: float = Field(default=60.0, ge=0)  # a 5xx robots.txt keeps the host closed this long
    robots_retries: int = Field(default=2, ge=0)  # then its pages fail as crawl:robots_unavailable


class SourceConfig(Strict):
    name: str
    kind: str  # a reader's registered name: html_dir | warc | jsonl | parquet | source_dir | git | crawl
    paths: list[str | PathSpec]
    lang: str | None = None  # the natural language expected (en, zh); None for code
    domain: str | None = None  # which filter set applies: en | zh | code (default: from kind and lang)
    text_field: str = "text"  # jsonl/parquet: the column holding the text
    url_field: str | None = None  # jsonl/parquet: the column holding the url, if any
    ref: str = "HEAD"  # git: the ref to read
    crawl: CrawlConfig | None = None  # crawl: seeds are ``paths``; limits and manners here
    # keep only documents under these licences (SPDX, from meta.license): "permissive" or a list of names, in
    # which "permissive" stands for the whole set (dataengine.licenses.PERMISSIVE); None keeps every licence
    licenses: Literal["permissive"] | list[str] | None = None
    # the HTML extraction engine of this source's pages (dataengine.extract.ENGINES): trafilatura, or resiliparse,
    # 11-19x its pages per core on the sample's docs but token F1 0.85-0.88 against it, its main-content pass
    # dropping every <ul> list (``python -m bench extract``)
    extract: Literal["trafilatura", "resiliparse"] = "trafilatura"

    @property
    def filter_domain(self) -> str:
        if self.domain:
            return self.domain
        if self.kind in ("source_dir", "git"):
            return "code"
        return self.lang or "en"

    def path_specs(self) -> list[PathSpec]:
        return [p if isinstance(p, PathSpec) else PathSpec(path=p) for p in self.paths]


class SourcesFile(Strict):
    sources: list[SourceConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesFile:
        names = [s.name for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(f"source names must be unique, got {names}")
        return self


class FilterSpec(Strict):
    """One filter of the quality stage: a registered name, its thresholds, and the domains it runs on."""

    name: str
    domains: list[str]
    params: dict[str, Any] = Field(default_factory=dict)


def _default_filters() -> list[FilterSpec]:
    """The quality chain, in order; a document is rejected by the first rule it fails.

    Text edits come first (Chinese script and boilerplate lines), path rules before content rules, and C4
    last: datatrove's C4 filter drops lines before FineWeb's rules see the text, ours only decides, so with
    C4 last both make the same decisions.
    """
    return [
        FilterSpec(name="min_length", domains=["en", "code"], params={"min_chars": 200}),
        # English: datatrove's Gopher, FineWeb and C4 filters at datatrove's default thresholds, except the share
        # of words with a letter: datatrove's spaCy word tokenizer counts punctuation as words, so technical
        # documentation (signatures, formulas) falls below Gopher's 0.8 -- 1,434 of the 4,538 English sample
        # pages, 4.1M of their 6.1M tokens.
        FilterSpec(name="gopher_repetition", domains=["en"]),
        FilterSpec(name="gopher_quality", domains=["en"], params={"max_non_alpha_words_ratio": 0.6}),
        # FineWeb's rules except the share of characters in duplicated lines (0.01): documentation repeats lines of
        # its code examples (`>>> `, `Dim arr ...`): at 0.01 it alone drops 810 of the 4,469 English sample pages
        # (230 of 497 Python docs), at 0.05 275.
        FilterSpec(name="fineweb_quality", domains=["en"], params={"char_duplicates_ratio": 0.05}),
        # FineWeb's C4 setting: lines without terminal punctuation still count (datatrove examples/fineweb.py).
        FilterSpec(name="c4_quality", domains=["en"], params={"filter_no_terminal_punct": False}),
        # Chinese: Traditional -> Simplified and boilerplate lines out first, then character-level rules.
        FilterSpec(name="opencc_t2s", domains=["zh"]),
        FilterSpec(name="zh_boilerplate", domains=["zh"]),
        # 100 characters, not EvalWeb's 200: a Chinese character carries about what two English ones do, so this
        # matches the English 200 (EvalWeb's 200 drops 1,039 of the 3,562 Chinese sample pages, 100 drops 383).
        FilterSpec(name="zh_quality", domains=["zh"], params={"min_chars": 100}),
        FilterSpec(name="zh_repetition", domains=["zh"]),
        # Code: The Stack / StarCoder (lock files, vendored, generated, minified, data files; line rules).
        FilterSpec(name="code_files", domains=["code"]),
        FilterSpec(name="code_lines", domains=["code"]),
    ]


class ShingleSpec(Strict):
    """How one domain's text becomes MinHash shingles: normalised, cut into units, then n-grams of units.

    ``word`` units are whitespace-separated after normalisation; with punctuation stripped they are the
    identifier/number tokens BigCode's near-dedup uses for code.  ``char`` suits Chinese (no spaces);
    ``line`` n-grams suit code whose lines are the unit of copying.
    """

    unit: Literal["word", "char", "line"] = "word"
    n: int = Field(default=5, ge=1)
    lowercase: bool = True
    strip_punctuation: bool = True  # punctuation and symbols become spaces
    normalise_digits: bool = True  # every run of digits becomes "0"


def _default_shingles() -> dict[str, ShingleSpec]:
    # Code shares the English spec so that a code file pasted into a web page still matches it.
    return {"en": ShingleSpec(), "zh": ShingleSpec(unit="char", n=5), "code": ShingleSpec()}


class LineDedupConfig(Strict):
    """CCNet-style line dedup within a source: a line found in ``min_docs`` documents is boilerplate."""

    enabled: bool = True
    domains: list[str] = Field(default_factory=lambda: ["en", "zh"])  # not code: `}` recurs in every file
    min_docs: int = Field(default=10, ge=2)


class NearDedupConfig(Strict):
    """MinHash-LSH near-duplicate removal (FineWeb's 14 bands x 8 rows by default)."""

    enabled: bool = True
    bands: int = Field(default=14, ge=1)
    rows: int = Field(default=8, ge=1)
    # LSH candidates are kept only if their signatures agree on this share of hashes (estimated Jaccard):
    # this removes the ~5% of pairs at Jaccard 0.5 that 14x8 banding makes candidates.
    threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    scope: Literal["all", "source"] = "all"  # compare documents across all sources, or within each source
    shingles: dict[str, ShingleSpec] = Field(default_factory=_default_shingles)  # by domain; others: word 5-grams
    seed: int = 1  # of the hash permutations
    lines: LineDedupConfig = Field(default_factory=LineDedupConfig)

    def shingle_spec(self, domain: str) -> ShingleSpec:
        return self.shingles.get(domain, ShingleSpec())

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


class LangIdConfig(Strict):
    """fastText language ID of text sources (code is not language-identified)."""

    enabled: bool = True
    model: str | None = None  # a fastText model (lid.176.bin, GlotLID); default: the project's own, trained once
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)  # a matching language below this is ``low_score``
    # language -> source: a text document in that language found in another source is moved there (counted as
    # ``langid:routed`` in its own source, and as ``routed_in`` of the other) instead of ``lang_mismatch``
    route: dict[str, str] = Field(default_factory=dict)


QUALITY_LANGS = ("en", "zh")  # the text languages the project trains a quality classifier for


class QualityModelConfig(Strict):
    """The fastText quality classifiers (en, zh): every text document gets a ``quality_score`` column.

    Tag first, threshold later: scores are computed once and cached with the tagged documents; ``min_score``
    (per language, e.g. ``{en: 0.2}``) rejects below it as ``quality_model:low_score``.  Empty: tag only.
    """

    enabled: bool = True
    min_score: dict[str, float] = Field(default_factory=dict)

    @field_validator("min_score")
    @classmethod
    def _known_languages(cls, min_score: dict[str, float]) -> dict[str, float]:
        for lang, score in min_score.items():
            if lang not in QUALITY_LANGS or not 0.0 <= score <= 1.0:
                raise ValueError(
                    f"quality_model.min_score: {lang}={score}: languages {QUALITY_LANGS}, scores in [0, 1]"
                )
        return min_score


class DecontamConfig(Strict):
    """Drop training documents that contain evaluation items (GPT-3 / FineWeb style long n-gram overlap).

    Items come from ``pretrain.eval``'s suite; English and code are matched on word ``word_ngram``-grams,
    Chinese on character ``char_ngram``-grams; an item shorter than the n-gram is matched whole (as its own
    n-gram), and one shorter than ``min_units`` is too generic to match and is counted as skipped.
    """

    enabled: bool = True
    suite: str = "default"
    word_ngram: int = Field(default=13, ge=1, le=64)
    char_ngram: int = Field(default=13, ge=1, le=64)
    min_units: int = Field(default=6, ge=1)


class PipelineConfig(Strict):
    max_file_bytes: int = 1_000_000  # files above this are rejected unread (The Stack's cap)
    langid: LangIdConfig = Field(default_factory=LangIdConfig)
    quality_model: QualityModelConfig = Field(default_factory=QualityModelConfig)
    pii: bool = True  # redact e-mails, public IP addresses and secrets in kept documents
    filters: list[FilterSpec] = Field(default_factory=_default_filters)
    # the English chain: "fast" (one shared split per document, spaCy's words, the same decisions) or "datatrove"
    # (datatrove's own filter classes, each calling spaCy itself)
    english_rules: Literal["fast", "datatrove"] = "fast"
    # code-aware rules for web sources: the prose rules judge a page with its code blocks masked out (they stay in
    # the text), and a page whose code_share is above code_page_share is judged by the code rules on its blocks;
    # false judges every page's whole text, as the rules were written for web prose
    code_aware: bool = True
    code_page_share: float = Field(default=0.5, ge=0.0, le=1.0)
    exact_dedup: bool = True
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    vocab_size: int = 32_000
    tokenizer_sample_bytes: int = 30_000_000  # text the tokenizer is trained on, split by mix share
    shard_tokens: int = 4 * 2**20
    rejects_sample_per_reason: int = 20
    batch_size: int = 256  # documents per Ray Data batch


class MixConfig(Strict):
    name: str
    sources: str = "sample"  # "sample" (the embedded Debian corpus) or a sources YAML path
    shares: dict[str, float]
    total_tokens: int | Literal["auto"] = "auto"
    max_epochs: float = 4.0
    held_out: float = 0.005  # share of each source's documents held out, by id hash
    # or by tokens: per source, the first documents in id-hash order up to this many tokens and at least
    # held_out_min_docs documents (never more than half a source), so held-out bits per byte can measure
    held_out_tokens: int | None = Field(default=None, gt=0)
    held_out_min_docs: int = Field(default=100, ge=0)
    seed: int = 0
    licenses: Literal["permissive"] | list[str] | None = None  # for every code source that sets none itself
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

    @field_validator("shares")
    @classmethod
    def _shares_sum_to_one(cls, shares: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in shares.values()):
            raise ValueError("shares must be non-negative")
        total = sum(shares.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shares must sum to 1, they sum to {total:.6f}")
        return shares

    def config_hash(self) -> str:
        """Hash of everything that changes the output (for the manifest)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None


def validated(model: type[BaseModel], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None


def load_mix(name_or_path: str) -> MixConfig:
    """A mix by preset name (``code30`` -> pipelines/mixes/code30.yaml) or by YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = MIXES_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in MIXES_DIR.glob("*.yaml"))
            raise ValueError(f"unknown mix {name_or_path!r}; known presets: {', '.join(known)} (or pass a YAML path)")
    mix: MixConfig = validated(MixConfig, load_yaml(path), path)
    if mix.sources != "sample" and not Path(mix.sources).is_absolute():
        mix.sources = str((path.parent / mix.sources).resolve())  # a mix's sources file is relative to the mix
    return mix


def load_sources(path: str | Path) -> list[SourceConfig]:
    """Sources from a YAML file; relative paths in it are taken relative to the file."""
    path = Path(path)
    parsed: SourcesFile = validated(SourcesFile, load_yaml(path), path)
    for src in parsed.sources:
        specs = []
        for spec in src.path_specs():
            is_remote = "://" in spec.path
            if not is_remote and not Path(spec.path).is_absolute():
                spec = spec.model_copy(update={"path": str((path.parent / spec.path).resolve())})
            specs.append(spec)
        src.paths = specs
        if src.crawl and src.crawl.out and not Path(src.crawl.out).is_absolute():
            src.crawl.out = str((path.parent / src.crawl.out).resolve())
    return parsed.sources
