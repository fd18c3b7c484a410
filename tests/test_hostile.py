"""Hostile input through the real build (issue 9): every kind ends kept or rejected with its own reason.

``tests/hostile.py`` writes each kind as its own source, so the report's per-source funnel says where its inputs
went; ``rejects/sample.jsonl`` (sampling every rejection here) holds each rejected input with its detail.  The
build must finish, balance its funnel, stay within a memory bound while a 200 MB line, a 50 MB page and a 4 GiB
decompression bomb go through it, and never run code from a repository.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.memory import PeakMemory, tree_pss_bytes
from dataengine.config import load_mix, load_sources
from pipelines.build import Build
from tests.hostile import KINDS, MARKER, make_hostile, write_hostile_mix

KEPT = "kept"  # passed every cleaning stage: in a shard, held out, or left out by the mix (only `healthy` is mixed)
MEMORY_BOUND = 3 << 30  # bytes of PSS over the whole process tree: pytest, the Ray driver, raylet and workers

# kind -> outcome -> documents.  A file that is one document gives one; containers (WARC, JSONL, git) give several.
EXPECTED: dict[str, dict[str, int]] = {
    "html_zero_byte": {"extract:empty": 1},
    "html_whitespace_only": {"extract:empty": 1},
    "html_invalid_utf8": {KEPT: 1},
    "html_utf16_bom": {KEPT: 1},
    "html_utf16_no_bom": {KEPT: 2},
    "html_utf8_bom": {KEPT: 1},
    "html_mixed_encodings": {KEPT: 1},
    "html_wrong_charset": {KEPT: 1},
    "html_nul_bytes": {KEPT: 1},
    "html_rtl_zero_width": {KEPT: 1},
    "html_only_emoji": {"langid:lang_mismatch": 1},
    "html_deep_nesting": {"extract:too_deep": 1},
    "html_50mb": {"read:too_large": 1},
    "html_binary": {"extract:binary": 1},
    "html_symlink_outside": {"read:symlink": 2},
    "html_symlink_loop": {"read:symlink": 2},
    "html_fifo": {"read:not_regular_file": 1},
    "html_odd_names": {KEPT: 3},
    "warc_gz_corrupt_middle": {KEPT: 2, "read:corrupt_gzip": 1},
    "warc_corrupt_header_middle": {KEPT: 2, "read:corrupt_warc": 1},
    "warc_truncated": {KEPT: 2, "read:truncated_record": 1},
    "warc_zero_byte": {"read:empty_file": 1},
    "warc_http_500": {KEPT: 1, "read:http_500": 1},
    "warc_not_text": {"read:unsupported_content_type": 2},
    "jsonl_truncated_gzip": {KEPT: 5, "read:corrupt_archive": 1},
    "jsonl_decompression_bomb": {"read:decompression_bomb": 1},
    "jsonl_malformed_lines": {KEPT: 2, "read:malformed_json": 4, "read:malformed_record": 1},
    "jsonl_deep_nesting": {KEPT: 1, "read:too_deep": 1},
    "jsonl_text_not_string": {KEPT: 1, "read:text_not_string": 3},
    "jsonl_lone_surrogate": {KEPT: 1},
    "jsonl_200mb_line": {KEPT: 1, "read:too_large": 1},
    "jsonl_zero_byte": {"read:empty_file": 2},
    "jsonl_whitespace_only": {"read:empty_file": 1},
    "jsonl_nul_in_text": {KEPT: 1, "read:malformed_json": 1},
    "parquet_wrong_schema": {"read:missing_text_field": 1},
    "parquet_text_not_string": {"read:text_not_string": 3},
    "parquet_huge_row": {KEPT: 1, "read:too_large": 1},
    "parquet_truncated": {"read:corrupt_parquet": 1},
    "parquet_zero_byte": {"read:empty_file": 1},
    "code_binary_py": {"extract:binary": 1},
    "code_zero_byte": {"extract:empty": 1},
    "code_whitespace_only": {"extract:empty": 1},
    "code_invalid_utf8": {"extract:invalid_utf8": 1},
    "code_utf16_bom": {KEPT: 1},
    "code_utf16_no_bom": {KEPT: 1},
    "code_crlf": {KEPT: 1},
    "code_nul_bytes": {"extract:binary": 1},
    "code_minified_js": {"code_files:minified": 1},
    "code_200mb_line": {"read:too_large": 1},
    "code_symlink_outside": {"read:symlink": 1},
    "code_symlink_loop": {"read:symlink": 3},
    "code_fifo": {"read:not_regular_file": 1},
    "code_rtl_trojan_source": {KEPT: 1},
    "git_symlink_loop": {KEPT: 1, "read:symlink": 2},
    "git_submodule": {KEPT: 1, "read:submodule": 1, "extract:not_code": 1},
    "git_lfs_pointer": {KEPT: 1, "read:lfs_pointer": 1, "extract:not_code": 1},
    "git_dotdot_path": {KEPT: 1, "read:unsafe_path": 2},
    "git_hooks_and_filters": {KEPT: 1, "extract:not_code": 1},
    "git_empty_tree": {"read:empty_repo": 1},
    "git_odd_names": {KEPT: 3},
}


@dataclass
class Built:
    root: Path
    out: Path
    report: dict[str, Any]
    samples: list[dict[str, Any]]
    peak_bytes: int
    before_bytes: int  # the same tree (pytest and the idle Ray cluster) just before the build
    seconds: float


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, ray_local: None) -> Built:
    """The hostile corpus, written once, and one real build over it with its peak memory."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "corpus").mkdir()
    sources = make_hostile(root / "corpus")
    mix = load_mix(str(write_hostile_mix(root, sources)))
    out = root / "out"
    before, start = tree_pss_bytes(os.getpid()), time.perf_counter()
    with PeakMemory(interval=0.2) as peak:
        report = Build(mix, load_sources(mix.sources), out, cpus=2).run()
    seconds = time.perf_counter() - start
    lines = (out / "rejects" / "sample.jsonl").read_text(encoding="utf-8").split("\n")  # texts hold U+0085, U+2028
    return Built(root, out, report, [json.loads(line) for line in lines if line], peak.peak, before, seconds)


def outcomes(funnel: dict[str, Any]) -> dict[str, int]:
    """A source's funnel as outcome -> documents, with everything that passed the cleaning stages as ``kept``."""
    found: Counter[str] = Counter()
    found[KEPT] += funnel["docs_out"] + funnel["held_out_docs"]
    for reason, n in funnel["rejected"].items():
        found[KEPT if reason.startswith("mix:") else reason] += n
    return {k: v for k, v in found.items() if v}


def test_the_corpus_covers_thirty_kinds_and_the_table_names_each() -> None:
    assert len(KINDS) >= 30
    assert set(EXPECTED) == set(KINDS)


def test_every_kind_ends_kept_or_rejected_with_its_reason(built: Built) -> None:
    got = {kind: outcomes(built.report["sources"][kind]) for kind in KINDS}
    wrong = {kind: got[kind] for kind in KINDS if got[kind] != EXPECTED[kind]}
    assert not wrong, f"kinds that ended elsewhere than expected: {wrong}"
    assert outcomes(built.report["sources"]["healthy"]) == {KEPT: 8}


def test_every_rejection_is_in_the_sample_with_its_input(built: Built) -> None:
    sampled = Counter((s["source"], s["reject"]) for s in built.samples)
    counted = Counter(
        {
            (name, reason): n
            for name, funnel in built.report["sources"].items()
            for reason, n in funnel["rejected"].items()
            if not reason.startswith("mix:")
        }
    )
    assert sampled == counted
    assert all(s["url"] and s["reject_detail"] for s in built.samples if s["reject"].startswith("read:"))


def test_the_funnel_balances(built: Built) -> None:
    for name, f in built.report["sources"].items():
        assert f["docs_in"] == f["docs_out"] + f["held_out_docs"] + sum(f["rejected"].values()), name
    assert (built.out / "manifest.json").exists()


def test_big_inputs_are_never_read_whole(built: Built) -> None:
    """The bomb stops at its cap, the long line is measured while skipped, and nothing held the whole of either."""
    by_kind = {s["source"]: s for s in built.samples}
    inflated = int(by_kind["jsonl_decompression_bomb"]["reject_detail"].split()[0])
    assert inflated < 256 << 20  # of the 4 GiB it would inflate to
    assert "209715" in by_kind["jsonl_200mb_line"]["reject_detail"]  # the line's length, 200 MiB and a few bytes
    gib = 2**30
    print(
        f"\nhostile build: {built.seconds:.0f} s, peak memory {built.peak_bytes / gib:.2f} GiB "
        f"(process tree PSS; {built.before_bytes / gib:.2f} GiB before the build)"
    )
    assert 0 < built.peak_bytes < MEMORY_BOUND


def test_no_repository_code_ran(built: Built) -> None:
    assert not [p for p in built.root.rglob(MARKER)], "a hook, filter or fsmonitor of a repository ran"
    assert not (Path(os.getcwd()) / MARKER).exists()
