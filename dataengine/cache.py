"""Where downloaded corpora, clones and trained models are kept between builds.

``$DATAENGINE_CACHE`` is a local directory (default ``~/.cache/dataengine``) or an object-store URI
(``s3://bucket/cache``).  With a URI, the trained models are shared through it: a driver that lacks one downloads
it, and one that trains it uploads it, so a team's machines train each model once; everything else (corpora,
clones) is kept in a local mirror directory of that URI.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from dataengine import storage

MODEL_FILE = "model.bin"  # written last into a model's directory: marks it complete


def cache_dir() -> Path:
    """The local cache directory: ``$DATAENGINE_CACHE``, or for a URI a local mirror of it."""
    configured = os.environ.get("DATAENGINE_CACHE")
    home = Path.home() / ".cache" / "dataengine"
    if configured and storage.is_uri(configured):
        path = home / "mirror" / hashlib.sha256(configured.encode()).hexdigest()[:12]
    else:
        path = Path(configured or home)
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_cache() -> str | None:
    configured = os.environ.get("DATAENGINE_CACHE")
    return configured if configured and storage.is_uri(configured) else None


def cached_model(directory: Path, train: Callable[[], Path]) -> Path:
    """``directory/model.bin``: there already, downloaded from the shared cache, or trained (and uploaded).

    Once per machine, whichever of the processes that ask at the same time (two builds, a pool of Ray actors) gets
    the lock: they must not train into the same directory.
    """
    path = directory / MODEL_FILE
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() or _download(directory):
            return path
        trained = train()
        _upload(directory)
        return trained


def _remote(directory: Path) -> str | None:
    shared = shared_cache()
    return storage.join(shared, directory.relative_to(cache_dir()).as_posix()) if shared else None


def _download(directory: Path) -> bool:
    remote = _remote(directory)
    if remote is None or not storage.exists(storage.join(remote, MODEL_FILE)):
        return False
    names = storage.list_files(remote)
    for name in sorted(names, key=lambda n: n == MODEL_FILE):  # the model last, as when it was trained
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        with storage.open_output(directory / name) as f:
            f.write(storage.read_bytes(storage.join(remote, name)))
    return True


def _upload(directory: Path) -> None:
    remote = _remote(directory)
    if remote is None:
        return
    names = sorted((p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()),
                   key=lambda n: n == MODEL_FILE)  # fmt: skip
    for name in names:
        if not name.startswith("."):
            storage.write_bytes(storage.join(remote, name), (directory / name).read_bytes())
