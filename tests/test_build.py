"""The build end to end on the test corpus: nothing lost, deterministic, readable shards, a clear CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from tokenizers import Tokenizer

from dataengine import storage
from dataengine.config import load_mix, load_sources
from dataengine.shards.reader import verify
from pipelines.build import Build
from pretrain.eval import load_suite
from tests.corpus import write_mix
from tests.s3 import S3Server

EXPECTED_REASONS = {
    "read:http_404",
    "read:unsupported_content_type",
    "read:truncated_record",
    "read:malformed_json",
    "read:missing_text_field",
    "read:corrupt_archive",
    "read:symlink",
    "read:too_large",
    "extract:binary",
    "extract:invalid_utf8",
    "extract:not_code",
    "extract:empty",
    "exact_dedup:duplicate",
    "langid:lang_mismatch",
    "min_length:too_short",
}


def build(corpus: Path, out: Path, cpus: int) -> dict:
    return build_mix(write_mix(out.parent, corpus, name=out.name), out, cpus)


def build_mix(mix_yaml: Path, out: storage.Target, cpus: int) -> dict:
    mix = load_mix(str(mix_yaml))
    return Build(mix, load_sources(mix.sources), out, cpus).run()


def digests(out: storage.Target) -> dict[str, str]:
    """sha256 of the shards, held-out files and manifest of a build on disk or in an object store."""
    names = [n for n in storage.list_files(out) if fnmatch(n, "*.arrow") and n.count("/") <= 1 or n == "manifest.json"]
    names = [n for n in names if "/" not in n or n.startswith("held_out/")]
    return {n: hashlib.sha256(storage.read_bytes(storage.join(out, n))).hexdigest() for n in names}


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory: pytest.TempPathFactory, ray_local: None) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("build") / "testmix"
    return out, build(corpus, out, cpus=2)


def test_every_document_is_accounted_for(built: tuple[Path, dict]) -> None:
    out, report = built
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["totals"] == report["totals"]
    seen = set()
    for name, f in on_disk["sources"].items():
        assert f["docs_in"] == f["docs_out"] + f["held_out_docs"] + sum(f["rejected"].values()), name
        seen |= set(f["rejected"])
    assert EXPECTED_REASONS <= seen
    assert on_disk["sources"]["code"]["docs_in"] == 48  # every file of the repo's tree, bad ones included
    assert (out / "report.html").exists() and (out / "funnel.png").read_bytes()[:4] == b"\x89PNG"
    samples = [json.loads(line) for line in (out / "rejects" / "sample.jsonl").read_text().splitlines()]
    assert {s["reject"] for s in samples} == {r for r in seen if not r.startswith("mix:")}  # mix drops are whole docs
    kept = [json.loads(line) for line in (out / "rejects" / "kept.jsonl").read_text().splitlines()]
    assert kept and all(k["reject"] is None for k in kept)
    for name, examples in on_disk["examples"].items():  # the report shows each rejection beside kept documents
        assert set(examples["rejected"]) <= set(on_disk["sources"][name]["rejected"]), name
        assert all(len(e["text"]) <= 400 for docs in examples["rejected"].values() for e in docs)
    assert "Rejected beside kept: code" in (out / "report.html").read_text(encoding="utf-8")
    decontam = on_disk["decontamination"]  # every task of the suite indexed, or named with why it could not be
    suite = {task.name for task in load_suite(decontam["suite"]).tasks}
    assert set(decontam["items"]) | set(decontam["unavailable"]) == suite
    assert not set(decontam["items"]) & set(decontam["unavailable"]) and all(decontam["unavailable"].values())


def test_mix_shares_and_held_out_slice(built: tuple[Path, dict]) -> None:
    out, _ = built
    manifest = json.loads((out / "manifest.json").read_text())
    for name, s in manifest["mix"]["sources"].items():
        assert abs(s["realised_share"] - s["target_share"]) < 0.01, name
        assert s["epochs"] <= 4 + 1e-9
    train_ids = set()
    for shard in manifest["shards"]:
        with pa.ipc.open_stream(out / shard["path"]) as reader:
            train_ids |= set(reader.read_all()["id"].to_pylist())
    held_ids = set()
    for entry in manifest["held_out"]:
        with pa.ipc.open_stream(out / entry["path"]) as reader:
            table = reader.read_all()
        held_ids |= set(table["id"].to_pylist())
        assert all(table["text"].to_pylist())
        shares = table["code_share"].to_pylist()  # held-out bits per byte slice pages with code on it
        assert all(0 <= x <= 1 for x in shares) and (set(shares) == {1.0}) == (table["source"][0].as_py() == "code")
    assert held_ids and not (held_ids & train_ids)
    assert len(manifest["shards"]) > 1 and verify(out) == []


def test_personal_addresses_are_redacted_before_tokenization(built: tuple[Path, dict]) -> None:
    out, report = built
    assert report["sources"]["code"]["pii_redacted"]["email"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts = []
    for entry in manifest["shards"] + manifest["held_out"]:
        with pa.ipc.open_stream(out / entry["path"]) as reader:
            texts += tok.decode_batch(reader.read_all()["tokens"].to_pylist())
    assert any("<EMAIL>" in t for t in texts)
    assert not any("@sweetapp.com" in t or "email-sig@python.org" in t for t in texts)


def test_shards_load_in_hf_datasets(built: tuple[Path, dict]) -> None:
    import datasets  # a dev dependency: the HF reader must open our shards as they are

    out, _ = built
    manifest = json.loads((out / "manifest.json").read_text())
    ds = datasets.Dataset.from_file(str(out / manifest["shards"][0]["path"]))
    assert ds.num_rows == manifest["shards"][0]["rows"] and set(ds.column_names) == {"tokens", "source", "id", "lang"}


def test_same_bytes_with_one_or_two_workers(corpus: Path, built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    again = tmp_path / "testmix"
    build(corpus, again, cpus=1)
    assert digests(again) == digests(out)


def test_build_into_object_storage_writes_the_bytes_of_a_local_build(
    corpus: Path, built: tuple[Path, dict], s3: S3Server, tmp_path: Path
) -> None:
    """``--out`` and ``--stage-cache`` as ``s3://`` URIs: shards, held-out files and manifest are the local build's
    bytes; the report, rejects sample and tokenizer are there too, and the stage cache's entries are complete."""
    out, stages = s3.uri("builds/testmix"), s3.uri("stages")
    mix = load_mix(str(write_mix(tmp_path, corpus, name="testmix")))
    Build(mix, load_sources(mix.sources), out, cpus=2, stage_cache=stages).run()
    assert digests(out) == digests(built[0])
    written = set(storage.list_files(out))
    assert {"report.json", "report.html", "funnel.png", "tokenizer.json", "rejects/sample.jsonl"} <= written
    entries = {name.split("/", 1)[0] for name in storage.list_files(stages)}
    assert {e.split("-", 1)[0] for e in entries} == {"tagged", "cleaned"}
    for entry in entries:
        done = json.loads(storage.read_text(storage.join(stages, entry, "done.json")))
        assert sorted(f"docs/{f}" for f in done["files"]) == [
            n.split("/", 1)[1] for n in storage.list_files(stages) if n.startswith(f"{entry}/docs/")
        ]
    assert verify(out) == []


def test_interrupted_build_is_refused_then_resumed_to_the_same_bytes(
    corpus: Path, built: tuple[Path, dict], tmp_path: Path
) -> None:
    """SIGINT then SIGKILL once the cleaned documents are checkpointed; --resume reuses them, same bytes."""
    out = tmp_path / "testmix"
    mix = write_mix(tmp_path, corpus, name="testmix")
    cmd = [sys.executable, "-m", "pipelines.build", "--mix", str(mix), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while not list(out.glob(".stages/cleaned-*/done.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the build ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()

    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr

    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["stage_cache"]["hit"] is True
    assert not {"read+extract+langid+quality_model", "langid+filters+pii"} & set(report["timings_s"])  # reused
    assert digests(out) == digests(built[0])
    assert not list(out.glob(".stages/cleaned-*"))  # a completed build drops its cleaned stage cache...
    assert len(list(out.glob(".stages/tagged-*/done.json"))) == 1  # ...and keeps the models' tags


def test_a_new_threshold_rebuilds_from_the_cached_tags(corpus: Path, built: tuple[Path, dict], tmp_path: Path):
    """Tag first, threshold later: a stricter language score reruns the decisions, not extraction or the model."""
    first = built[1]
    out = tmp_path / "testmix"
    shutil.copytree(built[0], out)  # the same output, with the tags its build kept in .stages/
    # a threshold from the tags themselves: the lowest over sources of the best language score among the documents
    # the first build trained on, so that some documents fall below it and every source keeps one
    trained = set()
    for shard in out.glob("shard-*.arrow"):
        with pa.ipc.open_stream(shard) as stream:
            trained |= set(stream.read_all()["id"].to_pylist())
    (tags,) = (out / ".stages").glob("tagged-*")
    best: dict[str, float] = {}
    for row in pq.read_table(tags / "docs", columns=["id", "source", "lang_score"]).to_pylist():
        if row["id"] in trained and row["lang_score"] is not None:
            best[row["source"]] = max(best.get(row["source"], 0.0), row["lang_score"])
    threshold = min(best.values()) - 1e-6
    pipeline = yaml.safe_load(write_mix(tmp_path, corpus).read_text())["pipeline"]
    strict = {**pipeline, "langid": {"min_score": threshold}}
    mix = load_mix(str(write_mix(tmp_path, corpus, pipeline=strict)))
    report = Build(mix, load_sources(mix.sources), out, cpus=2).run()
    assert "tagged documents (stage cache)" in report["timings_s"]
    assert "read+extract+langid+quality_model" not in report["timings_s"]
    assert report["stage_cache"]["hit"] is False  # the cleaned stages depend on the threshold: recomputed
    low = sum(f["rejected"].get("langid:low_score", 0) for f in report["sources"].values())
    assert low > 0 and not any("langid:low_score" in f["rejected"] for f in first["sources"].values())
    for name, f in report["sources"].items():  # same documents in: only decisions moved
        assert f["docs_in"] == first["sources"][name]["docs_in"], name


def test_langid_route_moves_the_untranslated_page_and_the_funnel_still_balances(
    corpus: Path, built: tuple[Path, dict], tmp_path: Path
) -> None:
    """The English page inside the Chinese site goes to web_en with ``langid.route`` (from the cached tags)."""
    out = tmp_path / "testmix"
    shutil.copytree(built[0], out)
    pipeline = yaml.safe_load(write_mix(tmp_path, corpus).read_text())["pipeline"]
    mix = load_mix(str(write_mix(tmp_path, corpus, pipeline={**pipeline, "langid": {"route": {"en": "web_en"}}})))
    report = Build(mix, load_sources(mix.sources), out, cpus=2).run()
    src = report["sources"]
    assert src["web_zh"]["rejected"].get("langid:routed", 0) >= 1
    assert "langid:lang_mismatch" not in src["web_zh"]["rejected"]  # every stray page was English: all moved
    routed = sum(f["rejected"].get("langid:routed", 0) for f in src.values())
    assert src["web_en"]["routed_in"] == routed
    assert src["web_en"]["docs_in"] == built[1]["sources"]["web_en"]["docs_in"] + routed
    for name, f in src.items():
        assert f["docs_in"] == f["docs_out"] + f["held_out_docs"] + sum(f["rejected"].values()), name
    bad = mix.model_copy(update={"pipeline": mix.pipeline.model_copy(update={"langid": mix.pipeline.langid.model_copy(
        update={"route": {"en": "nowhere"}})})})  # fmt: skip
    with pytest.raises(ValueError, match="langid.route names no source nowhere"):
        Build(bad, load_sources(mix.sources), tmp_path / "bad", cpus=2)


def test_full_or_unwritable_output_is_a_clear_error_and_never_looks_complete(corpus: Path, tmp_path: Path) -> None:
    mix = write_mix(tmp_path, corpus, name="fullmix")
    cmd = [sys.executable, "-m", "pipelines.build", "--mix", str(mix), "--workers", "2", "--out"]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = subprocess.run([*cmd, str(blocker / "out")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and "Not a directory" in done.stderr and "Traceback" not in done.stderr

    small = tmp_path / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a 1 MB tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        done = subprocess.run([*cmd, str(small / "out")], capture_output=True, text=True, timeout=600)
        assert done.returncode == 1, done.stderr[-3000:]
        assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
        assert not (small / "out" / "manifest.json").exists()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_repository_hooks_never_run(corpus: Path, built: tuple[Path, dict]) -> None:
    assert not (corpus.parent / "HOOK_RAN").exists()


def test_cli_as_the_readme_runs_it(corpus: Path, tmp_path: Path) -> None:
    mix = write_mix(tmp_path, corpus, name="climix")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipelines.build", "--mix", str(mix), "--out", str(out), "--workers", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "docs in" in done.stderr and "web_zh" in done.stderr  # the summary table
    checked = subprocess.run(
        [sys.executable, "-m", "dataengine.inspect", str(out), "verify"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_cli_bad_mix_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nshares: {code: 0.5, web_en: 0.2}\n")
    for mix, expected in ((str(bad), "sum to 1"), ("code99", "known presets: code0, code10, code30, code50")):
        done = subprocess.run([sys.executable, "-m", "pipelines.build", "--mix", mix], capture_output=True, text=True)
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr


def test_object_store_cap_reaches_ray_and_refuses_a_cluster() -> None:
    probe = "import ray; from dataengine.runtime import start_ray; start_ray(1, object_store_mb=96); "
    probe += "print(ray.cluster_resources()['object_store_memory'] / 2**20)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) == pytest.approx(96, abs=1)
    cmd = [sys.executable, "-m", "pipelines.build", "--mix", "code30", "--ray-address", "auto"]
    cmd += ["--object-store-mb", "96"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and "ray start" in done.stderr and "Traceback" not in done.stderr
