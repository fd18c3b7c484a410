"""Atomic writes: a reader sees the old file or the new one, and a failed write leaves the old one and no debris."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataengine.atomic import atomic_open, atomic_path, write_atomic, write_json_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    write_json_atomic(path, {"shards": 1, "名": "中文"})
    before = path.read_bytes()
    assert json.loads(before) == {"shards": 1, "名": "中文"} and "中文" in before.decode("utf-8")
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(path) as f:
        f.write('{"shards": 2, ')
        assert path.read_bytes() == before  # not visible before the block ends
        raise RuntimeError("disk full")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_writers_that_take_a_file_name_and_binary_data(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "tokenizer.json") as tmp:
        assert tmp.parent == tmp_path and tmp.name != "tokenizer.json"
        tmp.write_text("{}", encoding="utf-8")
    write_atomic(tmp_path / "funnel.png", b"\x89PNG\r\n")
    assert (tmp_path / "tokenizer.json").read_text() == "{}"
    assert (tmp_path / "funnel.png").read_bytes() == b"\x89PNG\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["funnel.png", "tokenizer.json"]
