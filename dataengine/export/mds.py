"""MosaicML ``streaming`` MDS: ``index.json`` + ``shard.NNNNN.mds``, read by ``streaming.StreamingDataset``.

Written from the format as ``streaming`` 0.13's ``MDSWriter`` lays it out, because that package cannot share this
environment (it pins ``transformers<5`` and imports torchvision): one sample per document with columns ``id``
(str), ``source`` (str) and ``tokens`` (``ndarray:uint16``, or uint32 for large vocabularies), no EOS added, no
compression.  A shard file is ``uint32 samples``, ``uint32 offsets[samples + 1]``, the shard's JSON config, then
the samples; a sample is the ``uint32`` sizes of its variable-size columns, then the columns in name order.

``streaming_python()`` gives the interpreter of a cached venv that has the real reader, for tests and benchmarks.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dataengine.cache import cache_dir
from dataengine.export.common import token_batches, tokenizer_info
from dataengine.shards.reader import Split

SIZE_LIMIT = 1 << 26  # MDSWriter's default shard size (64 MiB)
COLUMNS = ("id", "source", "tokens")  # MDSWriter orders columns by name
# The reader's environment: torch/torchvision wheels from this machine's disk (streaming imports torchvision).
STREAMING_REQUIREMENTS = ("torch==2.14.1", "torchvision==0.29.1", "transformers<5", "mosaicml-streaming==0.13.0")


def _ndarray(values: np.ndarray) -> bytes:
    """``ndarray:DTYPE`` with a dynamic shape: ``(ndim << 2) | shape dtype code``, the shape, the values."""
    n = len(values)
    if n == 0:
        raise ValueError("MDS cannot encode an empty token array")
    code = next(c for c, bits in enumerate((8, 16, 32, 64)) if n < 1 << bits)  # the smallest uint for the shape
    shape = np.array([n], dtype=(np.uint8, np.uint16, np.uint32, np.uint64)[code])
    return bytes([(1 << 2) | code]) + shape.tobytes() + values.tobytes()


class _Shards:
    def __init__(self, dest: Path, encodings: list[str]) -> None:
        self.dest = dest
        self.config = {
            "column_encodings": encodings,
            "column_names": list(COLUMNS),
            "column_sizes": [None] * len(COLUMNS),
            "compression": None,
            "format": "mds",
            "hashes": [],
            "size_limit": SIZE_LIMIT,
            "version": 2,
        }
        self.config_bytes = json.dumps(self.config, sort_keys=True).encode("utf-8")
        self.shards: list[dict[str, Any]] = []
        self.samples: list[bytes] = []
        self.size = 8 + len(self.config_bytes)

    def add(self, sample: bytes) -> None:
        if self.samples and self.size + len(sample) + 4 > SIZE_LIMIT:
            self.flush()
        self.samples.append(sample)
        self.size += len(sample) + 4

    def flush(self) -> None:
        n = len(self.samples)
        offsets = np.cumsum([0] + [len(s) for s in self.samples], dtype=np.int64)
        offsets += 4 + 4 * (n + 1) + len(self.config_bytes)
        data = b"".join([np.uint32(n).tobytes(), offsets.astype(np.uint32).tobytes(), self.config_bytes, *self.samples])
        name = f"shard.{len(self.shards):05d}.mds"
        (self.dest / name).write_bytes(data)
        raw = {"basename": name, "bytes": len(data), "hashes": {}}
        self.shards.append({**self.config, "raw_data": raw, "samples": n, "zip_data": None})
        self.samples, self.size = [], 8 + len(self.config_bytes)

    def finish(self) -> None:
        if self.samples:
            self.flush()
        index = json.dumps({"shards": self.shards, "version": 2}, sort_keys=True)
        (self.dest / "index.json").write_text(index, encoding="utf-8")


def export(out: str, dest: Path, split: Split) -> dict[str, Any]:
    _, _, dtype = tokenizer_info(out)
    shards = _Shards(dest, ["str", "str", f"ndarray:{dtype.name}"])
    documents = tokens = 0
    for flat, length, sources, ids in token_batches(out, split):
        starts = np.concatenate([[0], np.cumsum(length)]).tolist()
        for i, (doc_id, source) in enumerate(zip(ids, sources, strict=True)):
            fields = [doc_id.encode("utf-8"), source.encode("utf-8"), _ndarray(flat[starts[i] : starts[i + 1]])]
            shards.add(np.array([len(f) for f in fields], dtype=np.uint32).tobytes() + b"".join(fields))
        documents += len(ids)
        tokens += len(flat)
    shards.finish()
    return {"documents": documents, "tokens": tokens, "files": len(shards.shards)}


def streaming_python(create: bool = True) -> Path | None:
    """The python of ``$DATAENGINE_CACHE/venvs/streaming`` (made on first use when ``create``), else None.

    Built under a lock in a temporary directory and renamed when complete, so concurrent callers wait for one
    build and an interrupted build is never taken for a finished one.
    """
    venvs = cache_dir() / "venvs"
    venvs.mkdir(exist_ok=True)
    final = venvs / "streaming"
    marker = final / "dataengine-requirements.txt"
    wanted = "\n".join(STREAMING_REQUIREMENTS) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return final / "bin" / "python"
    if not create:
        return None
    with (venvs / "streaming.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted:
            return final / "bin" / "python"
        tmp = venvs / f".streaming.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
        pip = [str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-compile", *STREAMING_REQUIREMENTS], check=True)  # .pyc only for what runs
        (tmp / marker.name).write_text(wanted)
        shutil.rmtree(final, ignore_errors=True)
        tmp.replace(final)
    return final / "bin" / "python"
