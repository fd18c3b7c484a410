"""The shard reader, ``verify`` and the inspection CLI on a small real build output made here.

The output is written with the engine's own writer, manifest and a real BPE tokenizer, so a change in the
shard format that the reader does not follow breaks these tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pytest

from dataengine.atomic import write_json_atomic
from dataengine.report.funnel import SourceFunnel
from dataengine.schema import make_id
from dataengine.shards.manifest import write_manifest
from dataengine.shards.reader import iter_documents, read_shard, verify
from dataengine.shards.writer import ShardWriter, sha256_file, shard_schema
from tests.corpus import LICENSES, STDLIB, ZH_SENTENCES
from tokenizer.train import eos_id, train

SHARE = {"code": 0.3, "web_en": 0.5, "web_zh": 0.2}
HELD_OUT = {"web_en": 2, "web_zh": 2}  # documents held out per source


def _texts() -> dict[str, list[str]]:
    code = [p.read_text(encoding="utf-8")[:3000] for p in sorted(STDLIB.glob("*.py"))[:150]]
    licences = [p for p in sorted(LICENSES.iterdir()) if p.is_file() and not p.is_symlink()]
    web_en = [chunk for p in licences for chunk in p.read_text(encoding="utf-8").split("\n\n") if len(chunk) > 300]
    n = len(ZH_SENTENCES)
    web_zh = ["".join(ZH_SENTENCES[(i + j) % n] for j in range(1 + i % 4)) for i in range(40)]
    return {"code": code, "web_en": web_en[:120], "web_zh": web_zh}


def _lang(source: str, i: int) -> str | None:
    """Languages as a build tags them: code by file type, text by language ID (which can say nothing)."""
    if source == "code":
        return ("python", "c")[i % 5 == 0]
    return None if i % 7 == 3 else source.removeprefix("web_")


def build_output(
    out: Path, only: tuple[str, ...] = tuple(SHARE), n_shards: int = 4
) -> dict[str, list[tuple[str, str]]]:
    """Write a build output of the sources ``only`` into ``out``; return ``{source: [(id, text)]}`` of its training
    documents.  Tokens carry no EOS, as in a real build: readers add the separator."""
    texts = {s: ts for s, ts in _texts().items() if s in only}
    tok = train([t for ts in texts.values() for t in ts], vocab_size=1000, out=out / "tokenizer.json")
    eos = eos_id(tok)
    vocab = tok.get_vocab_size()
    docs = {s: [(make_id(s, f"{s}/{i}", t.encode()), t) for i, t in enumerate(ts)] for s, ts in texts.items()}
    tokens = {s: [e.ids for e in tok.encode_batch([t for _, t in ds])] for s, ds in docs.items()}

    def table(source: str, lo: int, hi: int | None, text: bool) -> pa.Table:
        chosen = docs[source][lo:hi]
        cols = {"tokens": tokens[source][lo:hi], "source": [source] * len(chosen), "id": [i for i, _ in chosen]}
        if text:  # held-out files: their languages are left to the writer (null), as tests of them expect
            return pa.table({**cols, "text": [t for _, t in chosen]})
        return pa.table({**cols, "lang": [_lang(source, i) for i in range(len(chosen))]})

    total = sum(len(t) for ts in tokens.values() for t in ts)
    writer = ShardWriter(out, shard_schema(vocab), shard_tokens=total // n_shards)
    for source in docs:
        writer.write(table(source, HELD_OUT.get(source, 0), None, text=False))
    shards = writer.close()
    held_out = []
    for source, n in HELD_OUT.items():
        if source not in docs:
            continue
        held = ShardWriter(out / "held_out", shard_schema(vocab, {"text": pa.string()}), 10**12, prefix=source)
        held.write(table(source, 0, n, text=True))
        (entry,) = held.close()
        (out / "held_out" / entry["path"]).replace(out / "held_out" / f"{source}.arrow")
        held_out.append({**entry, "path": f"held_out/{source}.arrow"})
    realised = {s: sum(e["tokens_by_source"].get(s, 0) for e in shards) for s in docs}
    all_tokens = sum(realised.values())
    mix_sources = {
        s: {
            "target_share": SHARE[s],
            "realised_share": realised[s] / all_tokens,
            "target_tokens": round(SHARE[s] * all_tokens),
            "realised_tokens": realised[s],
            "available_tokens": realised[s],
            "available_docs": len(docs[s]) - HELD_OUT.get(s, 0),
            "docs": len(docs[s]) - HELD_OUT.get(s, 0),
            "epochs": 1.0,
        }
        for s in docs
    }
    write_manifest(
        out,
        {
            "config_hash": "0" * 64,
            "seed": 0,
            "tokenizer": {
                "path": "tokenizer.json",
                "sha256": sha256_file(out / "tokenizer.json"),
                "vocab_size": vocab,
                "eos_id": eos,
                "token_dtype": "uint16",
            },
            "shards": shards,
            "held_out": held_out,
            "mix": {"name": "code30", "total_tokens": all_tokens, "sources": mix_sources},
            "totals": {"rows": sum(e["rows"] for e in shards), "tokens": all_tokens},
        },
    )
    _write_report(out, docs, realised)
    return {s: ds[HELD_OUT.get(s, 0) :] for s, ds in docs.items()}


def _write_report(out: Path, docs: dict[str, list[tuple[str, str]]], realised: dict[str, int]) -> None:
    sources = {}
    for s, ds in docs.items():
        f = SourceFunnel(docs_in=len(ds) + 5, docs_out=len(ds) - HELD_OUT.get(s, 0), tokens_out=realised[s])
        f.held_out_docs = HELD_OUT.get(s, 0)
        f.reject("min_length:too_short", 3, 30, 300)
        f.reject("exact_dedup:重复", 2, 20, 200)
        sources[s] = asdict(f)
    report = {"mix": "code30", "seed": 0, "stages": ["read", "min_length", "exact_dedup", "mix"], "sources": sources}
    write_json_atomic(out / "report.json", report)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[tuple[str, str]]]]:
    out = tmp_path_factory.mktemp("build") / "code30"
    return out, build_output(out)


@pytest.fixture
def copy(built: tuple[Path, dict], tmp_path: Path) -> Path:
    """A private copy of the build output, for tests that damage it."""
    return Path(shutil.copytree(built[0], tmp_path / "code30"))


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataengine.inspect", *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_build_has_several_shards_and_verifies(built: tuple[Path, dict]) -> None:
    out, docs = built
    assert len(list(out.glob("shard-*.arrow"))) >= 3
    assert verify(out) == []
    train_ids = [d["id"] for d in iter_documents(out)]
    assert sorted(train_ids) == sorted(i for ds in docs.values() for i, _ in ds)
    held = list(iter_documents(out, "held_out"))
    assert {d["source"] for d in held} == set(HELD_OUT) and all(d["text"] for d in held)
    assert read_shard(out / "shard-00000.arrow").column_names == ["tokens", "source", "id", "lang"]


def test_verify_names_a_flipped_byte(copy: Path) -> None:
    shard = copy / "shard-00001.arrow"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    problems = verify(copy)
    assert problems and all(p.startswith("shard-00001.arrow:") for p in problems)
    assert any("sha256" in p for p in problems)


def test_verify_reports_missing_extra_and_tokenizer(copy: Path) -> None:
    (copy / "shard-00002.arrow").unlink()
    shutil.copy(copy / "shard-00000.arrow", copy / "shard-00099.arrow")
    (copy / "held_out" / "web_zh.arrow").unlink()
    with (copy / "tokenizer.json").open("a") as f:
        f.write(" ")
    problems = verify(copy)
    assert "shard-00002.arrow: missing" in problems
    assert "held_out/web_zh.arrow: missing" in problems
    assert "shard-00099.arrow: on disk but not in the manifest" in problems
    assert any(p.startswith("tokenizer.json: sha256") for p in problems)


def test_cli_verify(built: tuple[Path, dict], copy: Path) -> None:
    ok = cli(built[0], "verify")
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    (copy / "shard-00000.arrow").unlink()
    bad = cli(copy, "verify")
    assert bad.returncode == 1 and "shard-00000.arrow: missing" in bad.stdout


def test_cli_stats_and_sources(built: tuple[Path, dict]) -> None:
    out, docs = built
    stats = cli(out, "stats")
    assert stats.returncode == 0, stats.stderr
    assert "code30" in stats.stdout and "uint16" in stats.stdout
    for source in docs:
        assert source in stats.stdout
    sources = cli(out, "sources")
    assert sources.returncode == 0, sources.stderr
    assert "web_zh top rejections: min_length:too_short 3" in sources.stdout
    assert "exact_dedup:重复 2" in sources.stdout


def test_cli_sample_is_seeded_and_filters_by_source(built: tuple[Path, dict]) -> None:
    out, docs = built
    first = cli(out, "sample", "-n", "2", "--source", "web_zh", "--seed", "7")
    assert first.returncode == 0, first.stderr
    assert first.stdout == cli(out, "sample", "-n", "2", "--source", "web_zh", "--seed", "7").stdout
    ids = [i for i, _ in docs["web_zh"]]
    shown = [i for i in ids if i in first.stdout]
    assert len(shown) == 2 and not any(i in first.stdout for i, _ in docs["code"])
    assert "。" in first.stdout  # decoded Chinese text
    unknown = cli(out, "sample", "--source", "nope")
    assert unknown.returncode == 2 and "known: code, web_en, web_zh" in unknown.stderr


def test_cli_decode_round_trips(built: tuple[Path, dict]) -> None:
    out, docs = built
    for source in ("code", "web_zh"):
        doc_id, text = docs[source][3]
        decoded = cli(out, "decode", "--id", doc_id)
        assert decoded.returncode == 0, decoded.stderr
        assert decoded.stdout == unicodedata.normalize("NFC", text)
    first = next(iter_documents(out))
    by_row = cli(out, "decode", "--shard", "0", "--row", "0")
    assert by_row.returncode == 0 and first["id"] in by_row.stderr


def test_cli_user_errors_are_one_line(tmp_path: Path) -> None:
    missing = cli(tmp_path / "nowhere", "stats")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "no such directory" in missing.stderr
    empty = cli(tmp_path, "verify")
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1 and "manifest.json" in empty.stderr
    assert cli("--help").returncode == 0


def test_verify_catches_a_tokenizer_mismatch(copy: Path) -> None:
    other = train([t[::-1] for ts in _texts().values() for t in ts], vocab_size=1000, out=copy / "tokenizer.json")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["tokenizer"].update(sha256=sha256_file(copy / "tokenizer.json"), vocab_size=other.get_vocab_size())
    manifest["tokenizer"]["eos_id"] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems = verify(copy)
    assert any(p.startswith("manifest.json: eos id") for p in problems)
    mismatched = [p for p in problems if p.endswith("(tokenizer mismatch)")]
    assert {p.split(":")[0] for p in mismatched} == {"held_out/web_en.arrow", "held_out/web_zh.arrow"}


def test_cli_sources_counts_documents_and_tokens_per_shard(built: tuple[Path, dict]) -> None:
    out, docs = built
    shown = cli(out, "sources")
    assert shown.returncode == 0, shown.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["shards"]:
        assert entry["path"] in shown.stdout
    total = next(line for line in shown.stdout.splitlines() if line.strip("│ ").startswith("total"))
    cells = [c.strip() for c in total.split("│") if c.strip()][1:]
    for i, source in enumerate(sorted(docs)):  # docs then tokens, per source in name order
        assert cells[2 * i] == f"{len(docs[source]):,}"
        tokens = sum(e["tokens_by_source"].get(source, 0) for e in manifest["shards"])
        assert cells[2 * i + 1] == f"{tokens:,}"


def test_cli_lengths_writes_histograms(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, docs = built
    png = tmp_path / "lengths.png"
    shown = cli(out, "lengths", "--png", png)
    assert shown.returncode == 0, shown.stderr
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    for source, ds in docs.items():
        assert any(line.strip("│ ").startswith(source) and f"{len(ds):,}" in line for line in shown.stdout.splitlines())


def test_cli_sample_shows_ids_of_the_chosen_source(built: tuple[Path, dict]) -> None:
    out, docs = built
    shown = cli(out, "sample", "--source", "code", "--n", "5", "--max-chars", "100")
    assert shown.returncode == 0, shown.stderr
    headers = [line for line in shown.stdout.splitlines() if line.startswith("──")]
    assert len(headers) == 5 and all(" · code · " in h for h in headers)
    assert sum(i in shown.stdout for i, _ in docs["code"]) == 5
