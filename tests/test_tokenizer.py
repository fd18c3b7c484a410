"""Tokenizer: lossless on code and Chinese, digits split, deterministic, trainable from the command line."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.corpus import STDLIB, ZH_SENTENCES
from tokenizer.train import EOS, eos_id, train


def texts() -> list[str]:
    code = [p.read_text() for p in sorted((STDLIB / "json").glob("*.py"))]
    return code + ["".join(ZH_SENTENCES)] * 5 + ["Prices rose 12.5% in 2024, to 1,234 units."] * 5


def test_round_trip_on_code_chinese_tabs_and_crlf() -> None:
    tok = train(texts(), vocab_size=600)
    samples = texts()[:3] + ["def f(x):\r\n\tif x:\r\n\t\treturn '中文 “引号” ①'  \n", "    \n\n\t \x0b end"]
    for s in samples:
        assert tok.decode(tok.encode(s).ids) == s
    assert tok.encode("2024").tokens == ["2", "0", "2", "4"]
    assert tok.token_to_id(EOS) == eos_id(tok)


def test_training_is_deterministic() -> None:
    a = train(texts(), vocab_size=600).to_str()
    b = train(texts(), vocab_size=600).to_str()
    assert hashlib.sha256(a.encode()).digest() == hashlib.sha256(b.encode()).digest()


def test_cli_trains_from_files(tmp_path: Path) -> None:
    src = tmp_path / "corpus.txt"
    src.write_text("\n".join(texts()), encoding="utf-8")
    out = tmp_path / "tok" / "tokenizer.json"
    cmd = [sys.executable, "-m", "tokenizer.train", "--input", str(src), "--vocab-size", "500", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert out.exists() and "vocab 500" in done.stdout
    missing = subprocess.run([*cmd[:4], str(tmp_path / "nope.txt"), *cmd[5:]], capture_output=True, text=True)
    assert missing.returncode == 2 and "not found" in missing.stderr
