"""The README's default command on the embedded Debian corpus: ``python -m pipelines.build --mix code30``.

Slow (a few minutes on 2 cores; it fetches ~56 MB of Debian packages on first use) but it runs in .ci/run:
it is the one test of the real default corpus end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_default_build_as_the_readme_runs_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.build", "--mix", "code30"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = tmp_path / "out" / "code30"
    report = json.loads((out / "report.json").read_text())
    src = report["sources"]
    assert src["web_en"]["docs_in"] >= 3000 and src["web_zh"]["docs_in"] >= 3000
    assert src["code"]["bytes_in"] >= 50e6
    code_langs = {lang for lang, c in src["code"]["languages"].items() if c["docs"] >= 20}
    assert {"python", "go", "rust", "c", "javascript"} <= code_langs
    licences = src["code"]["licenses"]  # from the packages' Debian copyright files, as SPDX
    assert {"MIT", "PSF-2.0"} <= set(licences) and "NOASSERTION" not in licences
    assert set(report["quality_scores"]) >= {"web_en", "web_zh"}  # every kept English/Chinese page has a score
    for name, f in src.items():
        assert f["docs_in"] == f["docs_out"] + f["held_out_docs"] + sum(f["rejected"].values()), name
        assert f["tokens_out"] > 0
    for name, share in report["mix_shares"].items():
        assert abs(share["realised"] - share["target"]) < 0.01, name
    verify = subprocess.run(
        [sys.executable, "-m", "dataengine.inspect", str(out), "verify"], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
