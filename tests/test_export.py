"""Every export read back by its consumer's own reader, compared token for token with the shards.

The MosaicML reader runs in its own cached venv (``streaming_python``): made on first use (minutes), then reused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dataengine.export import export
from dataengine.export import nanogpt as nanogpt_format
from dataengine.export.mds import streaming_python
from dataengine.shards.manifest import load_manifest
from dataengine.shards.reader import iter_documents
from tests.test_inspect import build_output


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "code30"
    build_output(path)
    return path


@pytest.fixture(scope="module")
def docs(out: Path) -> list[dict]:
    return list(iter_documents(out))


@pytest.fixture(scope="module")
def eos(out: Path) -> int:
    return load_manifest(out)["tokenizer"]["eos_id"]


def test_hf_save_to_disk_reads_back_with_load_from_disk(out: Path, docs: list[dict], tmp_path: Path) -> None:
    from datasets import load_from_disk

    summary = export(out, "hf", tmp_path / "hf")
    back = load_from_disk(str(tmp_path / "hf"))
    assert summary["documents"] == len(back) == len(docs)
    assert back.to_list() == docs


@pytest.mark.filterwarnings("ignore:Transformer Engine and Apex")  # megatron-core's GPU-less import notes
def test_megatron_reads_back_with_indexed_dataset(out: Path, docs: list[dict], eos: int, tmp_path: Path) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    summary = export(out, "megatron", tmp_path / "megatron")
    back = IndexedDataset(str(tmp_path / "megatron" / summary["prefix"]))
    assert len(back) == len(docs) and back.index.dtype == np.uint16
    assert np.array_equal(back.document_indices, np.arange(len(docs) + 1))
    for i, doc in enumerate(docs):
        assert back[i].tolist() == [*doc["tokens"], eos]


def _load_data_shard(file: Path) -> torch.Tensor:
    """modded-nanogpt's reader (``train_gpt.py``): header checks, then the uint16 tokens."""
    header = torch.from_file(str(file), False, 256, dtype=torch.int32)
    assert header[0] == 20240520, "magic number mismatch in the data .bin file"
    assert header[1] == 1, "unsupported version"
    num_tokens = int(header[2])
    with file.open("rb", buffering=0) as f:
        tokens = torch.empty(num_tokens, dtype=torch.uint16)
        f.seek(256 * 4)
        nbytes = f.readinto(tokens.numpy())
        assert nbytes == 2 * num_tokens, "number of tokens read does not match header"
    return tokens


def test_nanogpt_reads_back_as_the_trainers_read_it(out: Path, docs: list[dict], eos: int, tmp_path: Path) -> None:
    expected = [t for doc in docs for t in (eos, *doc["tokens"])]
    small = len(expected) // 3  # several files, to check that documents are never split across them
    dest = tmp_path / "nanogpt"
    dest.mkdir()
    summary = nanogpt_format.export(out, dest, "train", shard_tokens=small)
    files = sorted(dest.glob("train_*.bin"))
    assert len(files) == summary["files"] >= 3
    modded = [_load_data_shard(f) for f in files]
    nano = [np.memmap(f, dtype=np.uint16, mode="r", offset=1024) for f in files]  # nanoGPT's get_batch
    assert torch.cat(modded).tolist() == expected == np.concatenate(nano).tolist()
    assert all(int(t[0]) == eos and len(t) <= small for t in modded)
    held = export(out, "nanogpt", tmp_path / "held", split="held_out")
    held_docs = list(iter_documents(out, "held_out"))
    assert held["documents"] == len(held_docs)
    val = _load_data_shard(tmp_path / "held" / "val_000000.bin").tolist()
    assert val == [t for doc in held_docs for t in (eos, *doc["tokens"])]


READ_MDS = """
import json, sys
from streaming import StreamingDataset

dataset = StreamingDataset(local=sys.argv[1], shuffle=False, batch_size=1)
with open(sys.argv[2], "w") as f:
    for s in dataset:
        row = {"id": s["id"], "source": s["source"], "tokens": s["tokens"].tolist(), "dtype": s["tokens"].dtype.name}
        f.write(json.dumps(row) + "\\n")
"""


def test_mds_reads_back_with_streaming_dataset(out: Path, docs: list[dict], tmp_path: Path) -> None:
    python = streaming_python()
    summary = export(out, "mds", tmp_path / "mds")
    assert summary["documents"] == len(docs)
    dump = tmp_path / "read.jsonl"
    done = subprocess.run(
        [str(python), "-c", READ_MDS, str(tmp_path / "mds"), str(dump)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    back = [json.loads(line) for line in dump.read_text().splitlines()]
    assert {r.pop("dtype") for r in back} == {"uint16"}
    assert back == [{"id": d["id"], "source": d["source"], "tokens": d["tokens"]} for d in docs]


def test_cli(out: Path, tmp_path: Path) -> None:
    def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "dataengine.export", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    first = cli(out, "--format", "megatron", "--dest", tmp_path / "m")
    assert first.returncode == 0, first.stderr
    assert "documents" in first.stdout and (tmp_path / "m" / "train_text_document.idx").exists()
    again = cli(out, "--format", "megatron", "--dest", tmp_path / "m")
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr
    assert cli(out, "--format", "csv").returncode == 2
    missing = cli(tmp_path / "nowhere", "--format", "hf")
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    assert not list(tmp_path.glob(".*.tmp"))
