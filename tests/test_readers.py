"""Readers: every input document becomes a row; unreadable inputs become counted ``read:*`` rejections."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataengine.config import PathSpec, SourceConfig, load_sources
from dataengine.sources import get_reader, list_units, read_units
from tests.corpus import make_code_repo


def read_all(source: SourceConfig, max_bytes: int = 1_000_000) -> list[dict]:
    units = list_units([source])
    table = read_units(pa.Table.from_pylist(units), {source.name: source}, max_bytes)
    return table.to_pylist()


def rejects(rows: list[dict]) -> list[str]:
    return sorted(r["reject"] for r in rows if r["reject"])


def test_html_dir_urls_from_base_url_and_size_cap(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.html").write_text("<html><body><p>hello</p></body></html>")
    (tmp_path / "big.html").write_text("<p>" + "x" * 5000 + "</p>")
    (tmp_path / "style.css").write_text("body {}")  # not a page of the site
    src = SourceConfig(name="s", kind="html_dir", paths=[PathSpec(path=str(tmp_path), base_url="http://h.test/")])
    rows = read_all(src, max_bytes=1000)
    assert sorted(r["url"] for r in rows) == ["http://h.test/big.html", "http://h.test/sub/a.html"]
    assert rejects(rows) == ["read:too_large"]
    assert rows[0]["id"].startswith("s/")


def test_warc_keeps_records_before_corruption_and_counts_the_rest(corpus: Path) -> None:
    src = next(s for s in load_sources(corpus) if s.name == "crawl_en")
    rows = read_all(src)
    reasons = rejects(rows)
    assert "read:http_404" in reasons
    assert "read:unsupported_content_type" in reasons
    assert "read:truncated_record" in reasons
    good = [r for r in rows if not r["reject"]]
    assert len(good) > 20 and all(r["url"].startswith("http://example.test/") for r in good)
    assert all(json.loads(r["meta"])["http_status"] == 200 for r in good)


def test_jsonl_malformed_lines_and_truncated_archive(tmp_path: Path) -> None:
    lines = [json.dumps({"body": "first doc"}), "{broken", json.dumps({"other": 1}), json.dumps({"body": "last"})]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'{"body": "y"}\n' * 1000)[:30])
    src = SourceConfig(name="j", kind="jsonl", paths=[str(tmp_path / "*.jsonl.gz")], text_field="body")
    rows = read_all(src)
    assert [r["text"] for r in rows if not r["reject"] and r["url"].startswith(str(tmp_path / "a"))] == [
        "first doc",
        "last",
    ]
    reasons = rejects(rows)
    assert reasons.count("read:malformed_json") == 1
    assert reasons.count("read:missing_text_field") == 1
    assert "read:corrupt_archive" in reasons


def test_parquet_text_field_and_wrong_schema(tmp_path: Path) -> None:
    pq.write_table(pa.table({"content": ["a doc", "another"], "url": ["u1", "u2"]}), tmp_path / "good.parquet")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "wrong.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    src = SourceConfig(name="p", kind="parquet", paths=[str(tmp_path)], text_field="content", url_field="url")
    rows = read_all(src)
    assert sorted(r["url"] for r in rows if not r["reject"]) == ["u1", "u2"]
    assert rejects(rows) == ["read:corrupt_parquet", "read:missing_text_field"]


def test_git_reads_tree_at_ref_without_running_repo_code(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_code_repo(repo)
    (repo / "lib" / "json" / "__init__.py").write_text("# changed after the first commit\n")
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "two", "--author", "t <t@t>"], check=True)
    (repo / ".gitattributes").write_text("*.py filter=evil\n")
    subprocess.run(["git", "-C", str(repo), "config", "filter.evil.smudge", f"touch {tmp_path}/FILTER_RAN"], check=True)

    src = SourceConfig(name="code", kind="git", paths=[str(repo)], ref="HEAD~1")
    rows = read_all(src, max_bytes=200_000)
    by_path = {json.loads(r["meta"])["path"]: r for r in rows}
    assert b"changed after" not in by_path["lib/json/__init__.py"]["raw"]
    assert by_path["lib/link.py"]["reject"] == "read:symlink"
    assert by_path["lib/huge.py"]["reject"] == "read:too_large"
    assert json.loads(by_path["lib/json/decoder.py"]["meta"])["repo"] == "repo"
    assert not (tmp_path / "HOOK_RAN").exists() and not (tmp_path / "FILTER_RAN").exists()


def test_git_clone_url_and_unreachable_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAENGINE_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "upstream"
    make_code_repo(repo)
    src = SourceConfig(name="code", kind="git", paths=[f"file://{repo}", "file:///nonexistent/repo.git"])
    rows = read_all(src, max_bytes=200_000)
    assert any(not r["reject"] and r["url"].startswith(f"{repo}/lib/json") for r in rows)
    assert [r["reject"] for r in rows if r["url"].startswith("file:///nonexistent")] == ["read:git_unavailable"]
    assert not (tmp_path / "HOOK_RAN").exists()


def test_unknown_reader_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="known kinds: .*html_dir"):
        get_reader("ftp_site")
