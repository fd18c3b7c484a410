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


class SourceConfig(Strict):
    name: str
    kind: str  # a reader's registered name: html_dir | warc | jsonl | parquet | source_dir | git
    paths: list[str | PathSpec]
    lang: str | None = None  # the natural language expected (en, zh); None for code
    domain: str | None = None  # which filter set applies: en | zh | code (default: from kind and lang)
    text_field: str = "text"  # jsonl/parquet: the column holding the text
    url_field: str | None = None  # jsonl/parquet: the column holding the url, if any
    ref: str = "HEAD"  # git: the ref to read

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
    return [
        FilterSpec(name="min_length", domains=["en", "code"], params={"min_chars": 200}),
        FilterSpec(name="min_length", domains=["zh"], params={"min_chars": 100}),
        # Gopher's thresholds (datatrove's defaults) except the share of words with a letter: datatrove's spaCy
        # word tokenizer counts punctuation as words, so technical documentation (signatures, formulas) falls
        # below Gopher's 0.8 -- 1,434 of the 4,538 English sample pages, 4.1M of their 6.1M tokens.
        FilterSpec(name="gopher_quality", domains=["en"], params={"max_non_alpha_words_ratio": 0.6}),
        FilterSpec(name="cjk_ratio", domains=["zh"], params={"min_ratio": 0.3}),
        FilterSpec(name="code_lines", domains=["code"]),
    ]


class PipelineConfig(Strict):
    max_file_bytes: int = 1_000_000  # files above this are rejected unread (The Stack's cap)
    filters: list[FilterSpec] = Field(default_factory=_default_filters)
    exact_dedup: bool = True
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
    held_out: float = 0.005
    seed: int = 0
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
    return parsed.sources
