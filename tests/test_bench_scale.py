"""The scale benchmark's generated corpus: byte-identical run to run, the intended mix, and no near-duplicates
(so that the build's near-dedup keeps the documents it is measured on); its size parsing and the cost model."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from bench.cost import core_hours_per_tb, extraction_core_hours, extraction_rates, project
from bench.harness import RESULTS
from bench.scale import (
    DOCS_PER_FILE,
    UNTIMED,
    Measured,
    Pools,
    _report,
    doc_counts,
    load_pools,
    rejections,
    rows_for,
    sizes_from_env,
    stage_rates,
    write_corpus,
)

TOTAL = 1_200  # three files of English: the file split is exercised too
CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(scope="module")
def pools() -> Pools:
    return load_pools()


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.jsonl"))
    }


def _records(folder: Path, source: str) -> list[dict[str, str]]:
    return [json.loads(line) for p in sorted((folder / source).glob("*.jsonl")) for line in p.open(encoding="utf-8")]


def _shingles(text: str, chars: bool) -> set[str]:
    units = list(text) if chars else text.split()
    return {"\x00".join(units[i : i + 5]) for i in range(len(units) - 4)}


def test_corpus_is_deterministic_and_mixed(pools: Pools, tmp_path: Path) -> None:
    first = write_corpus(pools, TOTAL, tmp_path / "a")
    second = write_corpus(pools, TOTAL, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert first["docs"] == second["docs"] == doc_counts(TOTAL) == {"web_en": 600, "web_zh": 240, "code": 360}
    assert len(list((tmp_path / "a" / "web_en").glob("*.jsonl"))) == -(-600 // DOCS_PER_FILE)
    other_seed = write_corpus(pools, 100, tmp_path / "c", seed=1)
    assert _records(tmp_path / "c", "web_en")[0] != _records(tmp_path / "a", "web_en")[0]

    en, zh, code = (_records(tmp_path / "a", s) for s in ("web_en", "web_zh", "code"))
    assert all(r["text"].isascii() and r["url"].startswith("https://en.") for r in en)
    assert all(len(CJK.findall(r["text"])) > len(r["text"]) / 3 for r in zh)
    assert {Path(r["path"]).suffix for r in code} == {".py", ".go"}
    assert first["text_bytes"]["web_en"] == sum(len(r["text"].encode()) for r in en)
    assert other_seed["docs"] == doc_counts(100)

    sources = yaml.safe_load(first["sources_yaml"].read_text())["sources"]
    assert [s["name"] for s in sources] == ["web_en", "web_zh", "code"]
    mix = yaml.safe_load(first["mix_yaml"].read_text())
    assert mix["pipeline"] == {"filters": []} and mix["sources"] == str(first["sources_yaml"])


def test_documents_are_distinct(pools: Pools, tmp_path: Path) -> None:
    """Exact Jaccard of every pair within a source stays below near-dedup's threshold (0.7): far below for text;
    for code less so, as real code holds near-copies (cobra's GenMan/GenMarkdown functions) that stay in the pool."""
    write_corpus(pools, 500, tmp_path)
    for source, bound in (("web_en", 0.3), ("web_zh", 0.3), ("code", 0.7)):
        sets = [_shingles(r["text"], source == "web_zh") for r in _records(tmp_path, source)]
        worst = max(len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2))
        assert worst < bound, (source, worst)


def test_sizes_from_env() -> None:
    assert sizes_from_env(None) == [20_000, 100_000, 500_000]
    assert sizes_from_env("2000,5000") == [2_000, 5_000]
    for bad in ("20000,abc", "20000", "5000,2000", "50,100"):
        with pytest.raises(ValueError, match="SCALE_SIZES"):
            sizes_from_env(bad)


def test_cost_model() -> None:
    assert core_hours_per_tb(1.0) == pytest.approx(1e6 / 3600)
    with pytest.raises(ValueError, match="MB/s"):
        core_hours_per_tb(0.0)
    plan = project({"filter": 2.0, "near_dedup": 0.5}, input_tb=10.0, nodes=4, cores_per_node=50)
    assert plan["core_hours"]["near_dedup"] == pytest.approx(4 * plan["core_hours"]["filter"])
    assert plan["total_core_hours"] == pytest.approx(sum(plan["core_hours"].values()))
    assert plan["wall_hours"] == pytest.approx(plan["total_core_hours"] / 200)


def test_extraction_cost_reads_the_extract_benchmark() -> None:
    rates = extraction_rates(RESULTS / "extract.json")
    assert set(rates) == {"trafilatura", "resiliparse"} and rates["resiliparse"] > rates["trafilatura"] > 0
    slow = rates["trafilatura"]
    assert extraction_core_hours(2.0, slow) == pytest.approx(2 * core_hours_per_tb(slow))


def _measured(docs: int, wall_s: float, driver_mb: float) -> Measured:
    report = {
        "workers": 2,
        "timings_s": {"filter": wall_s / 4, "near_dedup": wall_s / 2},
        "totals": {"docs_out": docs - 10},
        "sources": {
            "web_en": {"rejected": {"near_dedup:duplicate": 6}},
            "code": {"rejected": {"near_dedup:duplicate": 4}},
        },
    }
    return Measured(docs, docs / 400, wall_s, driver_mb, 2 * driver_mb, report)


def test_rates_add_up_to_the_wall_and_targets_compare() -> None:
    small, large = _measured(1_000, 40.0, 600.0), _measured(4_000, 100.0, 700.0)
    rates = stage_rates(large)
    assert set(rates) == {"filter", "near_dedup", UNTIMED}
    assert sum(large.docs / (docs_s * 2) for docs_s, _ in rates.values()) == pytest.approx(large.wall_s)
    assert rejections(large.report) == {"near_dedup:duplicate": 10}
    rows = {r.what: r for r in rows_for([small, large])}
    driver = rows["driver peak at 4,000 docs"]
    assert driver.peer_value == 664.0 and driver.ratio == pytest.approx(664 / 700)  # grew 100 MB: target missed
    per_doc = rows["wall time per doc at 4,000 docs"]
    assert per_doc.ours == pytest.approx(25.0) and per_doc.ratio == pytest.approx(1.2 * 40 / 25)
    assert rows["1,000 docs (2 MB): documents kept (out / in)"].ours == pytest.approx(99.0)


def test_a_report_without_timings_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"workers": 2, "totals": {}, "sources": {}}))
    with pytest.raises(ValueError, match="lacks timings_s"):
        _report(path)
