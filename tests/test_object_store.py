"""Object storage: readers, ``dataengine.storage`` and ``inspect`` against a real S3 server on 127.0.0.1."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import ray

from dataengine import inspect, pipeline, storage
from dataengine.cache import cached_model
from dataengine.config import PathSpec, SourceConfig
from dataengine.export import FORMATS, export
from dataengine.filters import lid_train
from dataengine.filters.langid import LangIdModel
from dataengine.shards.loader import PackedDataset
from dataengine.shards.manifest import load_manifest, write_manifest
from dataengine.shards.reader import iter_documents, read_shard, verify
from dataengine.sources import list_units, read_units
from dataengine.sources.files import expand
from tests.s3 import S3Server
from tests.test_inspect import build_output
from tests.test_loader import same, take

MAX_BYTES = 4096


def test_s3_fixture_resolves_plain_uris(s3: S3Server) -> None:
    fs = s3.filesystem()
    with fs.open_output_stream(f"{s3.bucket}/probe/x.txt") as f:
        f.write(b"hello")
    resolved, path = pafs.FileSystem.from_uri(s3.uri("probe/x.txt"))
    assert resolved.open_input_stream(path).read() == b"hello"


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh output root: a local directory, or a prefix in the test bucket."""
    if request.param == "local":
        return str(tmp_path / "out")
    s3: S3Server = request.getfixturevalue("s3")
    return s3.uri(f"storage/{request.node.name}")


def test_storage_write_read_list_remove(root: str) -> None:
    assert not storage.exists(root) and storage.list_files(root) == []
    storage.write_text(storage.join(root, "manifest.json"), "{}\n")
    storage.write_bytes(storage.join(root, "held_out", "a.arrow"), b"\x00\x01")
    storage.write_text(storage.join(root, "文档.txt"), "中文")
    assert storage.list_files(root) == ["held_out/a.arrow", "manifest.json", "文档.txt"]
    assert storage.read_bytes(storage.join(root, "held_out/a.arrow")) == b"\x00\x01"
    assert storage.read_text(storage.join(root, "文档.txt")) == "中文"
    packed = gzip.compress(b"kept as bytes")  # no compression guessed from a name, either way
    storage.write_bytes(storage.join(root, "rejects", "sample.jsonl.gz"), packed)
    assert storage.read_bytes(storage.join(root, "rejects", "sample.jsonl.gz")) == packed
    storage.remove(storage.join(root, "rejects"))
    with storage.open_input(storage.join(root, "held_out/a.arrow")) as f:
        f.seek(1)
        assert f.read() == b"\x01"
    assert storage.sha256(storage.join(root, "manifest.json")) == hashlib.sha256(b"{}\n").hexdigest()
    storage.remove(storage.join(root, "held_out"))
    assert storage.list_files(root) == ["manifest.json", "文档.txt"]
    storage.remove(storage.join(root, "manifest.json"))
    storage.remove(storage.join(root, "nothing-here"))
    assert storage.list_files(root) == ["文档.txt"]


def test_storage_failed_write_leaves_nothing_and_keeps_the_old_bytes(root: str) -> None:
    target = storage.join(root, "shard-00000.arrow")
    with pytest.raises(RuntimeError), storage.open_output(target) as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert not storage.exists(target) and storage.list_files(root) == []
    storage.write_bytes(target, b"whole")
    with pytest.raises(RuntimeError), storage.open_output(target) as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert storage.read_bytes(target) == b"whole" and storage.list_files(root) == ["shard-00000.arrow"]


def test_storage_local_paths_and_bad_schemes(tmp_path: Path) -> None:
    fs, path = storage.resolve(f"file://{tmp_path}/x")
    assert isinstance(fs, pafs.LocalFileSystem) and path == f"{tmp_path}/x"
    assert storage.join(Path("out"), "shards/", "/a") == "out/shards/a"
    assert storage.join("s3://b/out/", "manifest.json") == "s3://b/out/manifest.json"
    with pytest.raises(ValueError, match="nosuch://b/x: not a storage URI"):
        storage.resolve("nosuch://b/x")


def _jsonl_inputs(root: Path, corpus: Path) -> dict:
    """Plain and compressed JSON lines, with a malformed line, a missing field and a line over ``MAX_BYTES``."""
    lines = [json.dumps({"body": f"document {i} 文档", "n": i}) for i in range(40)]
    lines[7], lines[9] = "{broken", json.dumps({"other": 1})
    lines[12] = json.dumps({"body": "x" * (2 * MAX_BYTES)})
    data = ("\n".join(lines) + "\n").encode()
    (root / "plain.jsonl").write_bytes(data)
    (root / "no-final-newline.jsonl").write_bytes(data.rstrip(b"\n"))
    (root / "a.jsonl.gz").write_bytes(gzip.compress(data))
    (root / "b.jsonl.bz2").write_bytes(bz2.compress(data))
    (root / "c.jsonl.xz").write_bytes(lzma.compress(data))
    (root / "truncated.jsonl.gz").write_bytes(gzip.compress(data)[:200])
    return {"kind": "jsonl", "paths": ["*"], "text_field": "body"}


def _parquet_inputs(root: Path, corpus: Path) -> dict:
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(3000)]}), root / "big.parquet", row_group_size=500)
    pq.write_table(pa.table({"body": ["x"]}), root / "wrong.parquet")
    (root / "junk.parquet").write_bytes(b"not parquet at all")
    return {"kind": "parquet", "paths": [""]}


def _warc_inputs(root: Path, corpus: Path) -> dict:
    for path in sorted((corpus.parent / "warc").iterdir()):  # a good WARC and one truncated mid-record
        (root / path.name).write_bytes(path.read_bytes())
    return {"kind": "warc", "paths": ["*.warc.gz"]}


def _html_inputs(root: Path, corpus: Path) -> dict:
    (root / "sub").mkdir()
    (root / "sub" / "a.html").write_text("<html><body><p>hello</p></body></html>")
    (root / "b.htm").write_text("<p>页面</p>")
    (root / "big.html").write_text("<p>" + "x" * (2 * MAX_BYTES) + "</p>")
    (root / "style.css").write_text("body {}")
    return {"kind": "html_dir", "paths": [{"path": "", "base_url": "http://h.test/"}]}


def _code_inputs(root: Path, corpus: Path) -> dict:
    (root / "pkg").mkdir()
    (root / "pkg" / "m.py").write_text("# SPDX-License-Identifier: MIT\ndef f():\n    return 1\n")
    (root / "main.go").write_text("package main\n")
    (root / "huge.c").write_text("int x;\n" * MAX_BYTES)
    return {"kind": "source_dir", "paths": [""], "meta": {"repo": "example.test/r", "license": "Apache-2.0"}}


INPUTS = {"jsonl": _jsonl_inputs, "parquet": _parquet_inputs, "warc": _warc_inputs, "html_dir": _html_inputs}
INPUTS["source_dir"] = _code_inputs


def _source(root: str, spec: dict) -> SourceConfig:
    """The same source over ``root`` (a local directory or an ``s3://`` prefix)."""
    paths = [
        {**p, "path": storage.join(root, p["path"])} if isinstance(p, dict) else storage.join(root, p)
        for p in spec["paths"]
    ]
    paths = [p.rstrip("/") if isinstance(p, str) else p for p in paths]
    meta = spec.get("meta", {})
    paths = [PathSpec(**p, meta=meta) if isinstance(p, dict) else PathSpec(path=p, meta=meta) for p in paths]
    rest = {k: v for k, v in spec.items() if k not in ("paths", "meta")}
    return SourceConfig(name="src", lang="en", paths=paths, **rest)


def _rows(source: SourceConfig, local: str, remote: str) -> list[dict]:
    """The rows read from ``source``, with the remote root written as the local one (ids follow urls)."""
    table = read_units(pa.Table.from_pylist(list_units([source])), {source.name: source}, MAX_BYTES)
    rows = []
    for row in table.to_pylist():
        if remote in row["url"] or local in row["url"]:  # an id hashes its url, so the root
            del row["id"]
        rows.append({k: v.replace(remote, local) if isinstance(v, str) else v for k, v in row.items()})
    return rows


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_readers_read_s3_as_local_disk(kind: str, s3: S3Server, corpus: Path, tmp_path: Path) -> None:
    local = tmp_path / kind
    local.mkdir()
    spec = INPUTS[kind](local, corpus)
    remote = s3.upload(local, f"inputs/{kind}")
    from_disk = _rows(_source(str(local), spec), str(local), remote)
    from_s3 = _rows(_source(remote, spec), str(local), remote)
    assert from_s3 == from_disk
    kept = [r for r in from_s3 if not r["reject"]]
    assert len(kept) >= 2 and any(r["reject"] for r in from_s3)  # both kinds of row, so both paths were read
    if kind == "jsonl":
        too_large = [r["url"].rsplit("/", 1)[1] for r in from_s3 if r["reject"] == "read:too_large"]
        assert sorted(u for u in too_large if not u.startswith("truncated")) == [  # max_bytes bounds every stream
            "a.jsonl.gz#L13",
            "b.jsonl.bz2#L13",
            "c.jsonl.xz#L13",
            "no-final-newline.jsonl#L13",
            "plain.jsonl#L13",
        ]
        assert sum(1 for r in kept if r["url"].startswith(f"{local}/plain.jsonl#")) == 37


@pytest.fixture(scope="module")
def s3_build(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A small finished build (real shards, manifest, tokenizer, report) on disk and its copy in the bucket."""
    local = tmp_path_factory.mktemp("build") / "code30"
    docs = build_output(local)
    return local, s3.upload(local, "builds/code30"), docs


def inspect_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m dataengine.inspect`` in a fresh process, which reaches the S3 server by the environment alone."""
    command = [sys.executable, "-m", "dataengine.inspect", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_inspect_reads_a_build_from_s3_as_from_disk(
    s3_build: tuple[Path, str, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    local, remote, docs = s3_build
    assert verify(remote) == []
    assert list(iter_documents(remote)) == list(iter_documents(local))
    assert list(iter_documents(remote, "held_out")) == list(iter_documents(local, "held_out"))
    doc_id = docs["web_zh"][2][0]
    commands = (["stats"], ["sources"], ["sample", "-n", "3", "--seed", "5"], ["decode", "--id", doc_id], ["lengths"])
    for command in commands:
        assert inspect.main([str(local), *command]) == 0
        from_disk = capsys.readouterr().out.replace(str(local), "OUT")
        assert inspect.main([remote, *command]) == 0
        assert capsys.readouterr().out.replace(remote, "OUT") == from_disk
    assert storage.read_bytes(storage.join(remote, "doc_lengths.png")).startswith(b"\x89PNG")
    shown = inspect_cli(remote, "verify")  # a fresh process reaches the server by the environment alone
    assert shown.returncode == 0 and shown.stdout.startswith("OK: "), shown.stderr


def test_exports_read_a_build_from_s3_as_from_disk(s3_build: tuple[Path, str, dict], tmp_path: Path) -> None:
    """Every export of the build in the bucket holds the bytes of the same export made from disk."""
    local, remote, _ = s3_build
    for fmt in FORMATS:
        export(local, fmt, tmp_path / "disk" / fmt)
        export(remote, fmt, tmp_path / "s3" / fmt)
        written = [p for p in sorted((tmp_path / "disk" / fmt).rglob("*")) if p.is_file()]
        assert written, fmt
        for path in written:
            twin = tmp_path / "s3" / fmt / path.relative_to(tmp_path / "disk" / fmt)
            if path.suffix != ".json" or fmt != "hf":  # hf's state.json names its cache files' fingerprint
                assert twin.read_bytes() == path.read_bytes(), path
    with pytest.raises(ValueError, match="give --dest"):
        export(remote, "hf")


def test_the_loader_streams_a_build_from_s3_as_from_disk(s3_build: tuple[Path, str, dict]) -> None:
    local, remote, _ = s3_build
    kw = {"seq_len": 64, "batch_size": 4, "epochs": 1}
    assert same(take(PackedDataset(remote, **kw)), take(PackedDataset(local, **kw)))


def test_inspect_verify_on_s3_names_missing_and_extra_objects(s3: S3Server, s3_build: tuple[Path, str, dict]) -> None:
    local, _, _ = s3_build
    damaged = s3.upload(local, "builds/damaged")
    storage.remove(storage.join(damaged, "shard-00002.arrow"))
    storage.write_bytes(storage.join(damaged, "shard-00099.arrow"), (local / "shard-00000.arrow").read_bytes())
    storage.write_bytes(storage.join(damaged, "held_out", "web_zh.arrow"), b"not arrow")
    problems = verify(damaged)
    assert "shard-00002.arrow: missing" in problems
    assert "shard-00099.arrow: on disk but not in the manifest" in problems
    assert "held_out/web_zh.arrow: sha256 does not match the manifest" in problems
    shown = inspect_cli(damaged, "verify")
    assert shown.returncode == 1 and "shard-00002.arrow: missing" in shown.stdout


def test_inspect_errors_on_s3_are_one_line(s3: S3Server) -> None:
    storage.write_text(s3.uri("builds/unfinished/shard-00000.arrow"), "")
    for target, message in (
        (s3.uri("builds/nowhere"), "no such directory"),
        (s3.uri("builds/unfinished"), "no manifest.json"),
        ("s3://no-such-bucket-here/out", "no such directory"),
    ):
        shown = inspect_cli(target, "stats")
        assert shown.returncode == 2 and shown.stdout == "", shown.stderr
        assert shown.stderr.count("\n") == 1 and message in shown.stderr, shown.stderr


def test_ray_workers_read_s3_inputs(s3: S3Server, ray_local: None, tmp_path: Path) -> None:
    """Ray's workers inherit the endpoint and credentials (set before Ray started), as a cluster's would by env."""
    (tmp_path / "plain.jsonl").write_text("".join(json.dumps({"body": f"doc {i}"}) + "\n" for i in range(20)))
    remote = s3.upload(tmp_path / "plain.jsonl", "ray/plain.jsonl")
    source = SourceConfig(name="src", kind="jsonl", paths=[remote], text_field="body")
    ds = ray.data.from_items(list_units([source])).map_batches(
        read_units, fn_kwargs={"sources": {"src": source}, "max_bytes": MAX_BYTES}, batch_format="pyarrow"
    )
    rows = ds.take_all()
    assert [r["text"] for r in rows] == [f"doc {i}" for i in range(20)] and not any(r["reject"] for r in rows)


def test_listing_s3_inputs_matches_local_globs_and_errors_are_one_line(s3: S3Server, tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/a.jsonl", "d/sub/b.jsonl", "d/sub/c.txt", "d/文 档.jsonl"):
        (tmp_path / name).write_text("{}\n")
    remote = s3.upload(tmp_path / "d", "listing/d")
    local = tmp_path / "d"
    for pattern in ("**/*.jsonl", "*.jsonl", "*/*", "**", "sub/*.txt"):
        found = [p.removeprefix(remote) for p in expand(f"{remote}/{pattern}")]
        assert found == [p.removeprefix(str(local)) for p in expand(f"{local}/{pattern}")], pattern
    assert expand(f"{remote}/**/*.jsonl") == [f"{remote}/a.jsonl", f"{remote}/sub/b.jsonl", f"{remote}/文 档.jsonl"]
    assert expand(remote) == [f"{remote}/{n}" for n in ("a.jsonl", "sub/b.jsonl", "sub/c.txt", "文 档.jsonl")]
    assert expand(f"{remote}-none/*.jsonl") == expand(f"{tmp_path}/none/*.jsonl") == []
    with pytest.raises(ValueError, match=r"^input path does not exist: s3://"):
        expand(f"{remote}/missing.jsonl")
    with pytest.raises(ValueError, match=r"^cannot list s3://no-such-bucket/\*.jsonl: .*bucket does not exist"):
        expand("s3://no-such-bucket/*.jsonl")


def test_manifest_written_to_s3_is_the_bytes_written_to_disk(s3: S3Server, tmp_path: Path) -> None:
    manifest = {"seed": 0, "shards": [{"path": "shard-00000.arrow", "tokens": 3}], "mix": {"name": "混合"}}
    on_disk = write_manifest(tmp_path / "out", manifest)
    in_bucket = write_manifest(s3.uri("manifests/out"), manifest)
    assert in_bucket == s3.uri("manifests/out/manifest.json")
    assert storage.read_bytes(in_bucket) == Path(on_disk).read_bytes()
    assert load_manifest(s3.uri("manifests/out")) == load_manifest(tmp_path / "out")
    assert storage.list_files(tmp_path / "out") == ["manifest.json"]  # no temporary left beside it


def test_storage_arrow_streams_and_spooled_objects_round_trip(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "SPOOL_BYTES", 1 << 10)  # an object larger than the spool goes through a temp file
    table = pa.table({"tokens": [list(range(i, i + 50)) for i in range(100)], "id": [f"d{i}" for i in range(100)]})
    target = storage.join(root, "shard-00000.arrow")
    with storage.open_output(target) as f, pa.ipc.new_stream(f, table.schema) as writer:
        writer.write_table(table, max_chunksize=10)
    assert read_shard(target).equals(table) and storage.list_files(root) == ["shard-00000.arrow"]


def test_a_cache_in_s3_shares_trained_models_between_machines(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DATAENGINE_CACHE=s3://...``: the first machine trains the language-ID model and uploads it; a second machine
    (another home directory) downloads it instead of training, byte for byte, and it predicts."""
    model = lid_train.default_model()  # the real model, from this machine's cache (trained on first use)
    monkeypatch.setenv("DATAENGINE_CACHE", s3.uri("team-cache"))
    trained: list[Path] = []

    def train() -> Path:  # stands for training: the same bytes, written where training writes them
        target = lid_train.model_dir() / "model.bin"
        (target.parent / "eval.json").write_text("{}\n")
        target.write_bytes(model.read_bytes())
        trained.append(target)
        return target

    for machine in ("first", "second"):
        monkeypatch.setenv("HOME", str(tmp_path / machine))
        local = lid_train.model_dir()
        assert str(local).startswith(str(tmp_path / machine))
        assert cached_model(local, train).read_bytes() == model.read_bytes()
    assert len(trained) == 1  # the second machine downloaded it
    assert sorted(storage.list_files(s3.uri("team-cache"))) == [
        f"models/{lid_train.MODEL_VERSION}/eval.json",
        f"models/{lid_train.MODEL_VERSION}/model.bin",
    ]
    assert LangIdModel(local / "model.bin").predict("The quick brown fox jumps over the lazy dog.")[0] == "en"


def test_a_stage_cache_entry_reads_only_the_files_its_marker_names(root: str, ray_local: None) -> None:
    """Parquet left by an interrupted write beside a completed entry is never read (it is removed); an entry whose
    named files are missing is not reused.  Many files, as a real build writes (Ray Data treats long path lists
    differently from short ones)."""
    docs = storage.join(root, "tagged-x", "docs")
    for i in range(40):
        with storage.open_output(storage.join(docs, f"part-{i:03d}.parquet")) as f:
            pq.write_table(pa.table({"id": [f"doc-{i}"]}), f)
    done = {"files": [f"part-{i:03d}.parquet" for i in range(39)], "results": {}}  # the last: a leftover
    assert pipeline._only_named_files(storage.join(root, "tagged-x"), done)
    fs, path = storage.resolve(docs)
    ids = sorted(r["id"] for r in ray.data.read_parquet(path, filesystem=fs).take_all())
    assert ids == sorted(f"doc-{i}" for i in range(39))
    assert not pipeline._only_named_files(storage.join(root, "tagged-x"), {"files": ["gone.parquet"]})
