"""Where downloaded corpora, clones and trained models are kept between builds."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$DATAENGINE_CACHE``, else ``~/.cache/dataengine``."""
    path = Path(os.environ.get("DATAENGINE_CACHE") or Path.home() / ".cache" / "dataengine")
    path.mkdir(parents=True, exist_ok=True)
    return path
