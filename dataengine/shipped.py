"""Model files that travel to the workers through Ray's object store, not as paths on the driver's disk.

On a cluster with no shared filesystem, a worker cannot open a model the driver trained into its cache.  The
driver puts the file's bytes once per build (``ShippedModel.put``); each actor that loads it fetches them and,
because fastText loads from a path, writes them to a private temporary file that is removed as soon as the model
is in memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ray


@dataclass(frozen=True)
class ShippedModel:
    ref: ray.ObjectRef  # held in a dataclass, so Ray passes the reference and the actor fetches it when it loads
    name: str

    @classmethod
    def put(cls, path: Path) -> ShippedModel:
        return cls(ray.put(path.read_bytes()), path.name)


@contextmanager
def model_file(model: ShippedModel | Path | str) -> Iterator[str]:
    """A path to load ``model`` from: the path itself, or a temporary copy of shipped bytes (removed after)."""
    if not isinstance(model, ShippedModel):
        yield str(model)
        return
    fd, path = tempfile.mkstemp(prefix="dataengine-", suffix=f"-{model.name}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(ray.get(model.ref))
        yield path
    finally:
        os.unlink(path)
