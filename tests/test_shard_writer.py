"""Shard files: sized by tokens, byte-identical whatever the input batching, readable by Arrow and HF datasets."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from dataengine.shards.writer import ShardWriter, sha256_file, shard_schema


def rows(n: int) -> pa.Table:
    tokens = [[(i * 7 + j) % 30_000 for j in range(10 + i % 50)] for i in range(n)]
    return pa.table(
        {
            "tokens": pa.array(tokens, pa.list_(pa.uint16())),
            "source": [("code", "web_en", "web_zh")[i % 3] for i in range(n)],
            "id": [f"doc/{i:05d}" for i in range(n)],
            "lang": [("python", "en", "zh")[i % 3] if i % 11 else None for i in range(n)],
        }
    )


def write(out: Path, table: pa.Table, batch: int) -> list[dict]:
    writer = ShardWriter(out, shard_schema(32_000), shard_tokens=20_000)
    for start in range(0, table.num_rows, batch):
        writer.write(table.slice(start, batch))
    return writer.close()


def test_shards_split_by_tokens_and_do_not_depend_on_batching(tmp_path: Path) -> None:
    table = rows(3000)
    a = write(tmp_path / "a", table, batch=17)
    b = write(tmp_path / "b", table, batch=1000)
    assert a == b and len(a) > 3
    assert sum(s["rows"] for s in a) == 3000
    assert sum(s["tokens"] for s in a) == sum(len(t) for t in table["tokens"].to_pylist())
    assert all(s["tokens"] >= 20_000 for s in a[:-1])
    assert all(sha256_file(tmp_path / "a" / s["path"]) == s["sha256"] for s in a)
    assert not list((tmp_path / "a").glob(".*tmp"))


def test_shards_open_with_arrow_and_hf_datasets(tmp_path: Path) -> None:
    table = rows(500)
    shards = write(tmp_path, table, batch=64)
    first = tmp_path / shards[0]["path"]
    with pa.ipc.open_stream(first) as reader:
        got = reader.read_all()
    assert got.schema.field("tokens").type == pa.list_(pa.uint16())
    assert got["id"].to_pylist() == table["id"].to_pylist()[: got.num_rows]
    assert got["lang"].to_pylist() == table["lang"].to_pylist()[: got.num_rows]
    import datasets  # a dev dependency: the HF reader must open our shards as they are

    ds = datasets.Dataset.from_file(str(first), in_memory=False)
    assert ds[0]["tokens"] == table["tokens"][0].as_py() and ds.num_rows == got.num_rows
    assert ds["lang"] == got["lang"].to_pylist()


def test_tokens_by_language_and_rows_without_one(tmp_path: Path) -> None:
    table = rows(300)
    (shard,) = write(tmp_path / "lang", table, batch=300)[:1]
    got = pa.ipc.open_stream(tmp_path / "lang" / shard["path"]).read_all()
    expected: dict[str, int] = {}
    for lang, tokens in zip(got["lang"].to_pylist(), got["tokens"].to_pylist(), strict=True):
        if lang is not None:
            expected[lang] = expected.get(lang, 0) + len(tokens)
    assert shard["tokens_by_lang"] == dict(sorted(expected.items()))
    (bare,) = write(tmp_path / "bare", table.drop_columns(["lang"]).slice(0, 10), batch=10)
    assert bare["tokens_by_lang"] == {}  # written without languages: a null column, nothing counted
    assert pa.ipc.open_stream(tmp_path / "bare" / bare["path"]).read_all()["lang"].null_count == 10
