"""The models a build's tag stages load: the language-ID model and the quality classifiers, each resolved once
per build (a user's file, or the project's own, trained into the cache on first use)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dataengine.config import QUALITY_LANGS
from dataengine.filters.lid_train import default_model
from dataengine.filters.quality_model import default_model as default_quality_model
from dataengine.pipeline import Context
from dataengine.shards.writer import sha256_file
from dataengine.shipped import ShippedModel


def lid_model(ctx: Context) -> Path:
    """The user's fastText model, or the project's own (trained into the cache on first use)."""

    def resolve() -> Path:
        if ctx.pipe.langid.model:
            path = Path(ctx.pipe.langid.model)
            if not path.exists():
                raise ValueError(f"language-ID model not found: {path}")
            return path
        ctx.console.print("language ID: the project's fastText model (trained on first use, about 2 minutes)")
        return default_model()

    return ctx.once("lid_model", resolve)


def quality_models(ctx: Context) -> dict[str, Path]:
    """The quality classifier of each text language the sources hold (trained into the cache on first use)."""

    def resolve() -> dict[str, Path]:
        if not ctx.pipe.quality_model.enabled:
            return {}
        langs = sorted({s.lang.split("-", 1)[0] for s in ctx.sources if s.lang} & set(QUALITY_LANGS))
        if langs:
            ctx.console.print(f"quality model: the project's fastText classifiers for {', '.join(langs)}")
        return {lang: default_quality_model(lang) for lang in langs}

    return ctx.once("quality_models", resolve)


def shipped(ctx: Context, path: Path) -> ShippedModel:
    """The model's bytes in the object store, put once per build: workers never open the driver's path."""
    return ctx.once(f"shipped:{path}", lambda: ShippedModel.put(path))


@lru_cache(maxsize=16)
def sha256_of(path: Path) -> str:
    return sha256_file(path)
