"""Comments and docstrings removed from real code files, checked by each language's own parser: Python's ``ast``
(the same tree less its docstrings), acorn (the Debian package's JS tokenizer: the same tokens, no comment), gcc's
preprocessor on C, C++ and Go without raw strings (the same code once gcc drops comments, none left for it to
drop), PyYAML (the same data), ``bash -n``."""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import subprocess
import sysconfig
import tokenize
from pathlib import Path

import pytest
import yaml

from dataengine.extract.comments import STRIPPED, UNKNOWN, UNPARSED, strip_comments
from dataengine.sources.sample import debian_dir, ensure_packages

PACKAGES = ["node-acorn", "node-lodash", "golang-github-spf13-cobra-dev", "golang-github-sirupsen-logrus-dev",
            "libbitstream-dev", "libasio-dev", "dpkg"]  # fmt: skip
TOKENS_JS = """
const acorn = require(process.argv[2]);
const fs = require("fs");
for (const f of process.argv.slice(3)) {
  const src = fs.readFileSync(f, "utf8");
  let out = null;
  for (const sourceType of ["module", "script"]) {
    try {
      let comments = 0;
      const opts = {ecmaVersion: "latest", allowHashBang: true, sourceType, onComment: () => comments++};
      const tokens = [...acorn.tokenizer(src, opts)].map(t => t.type.label + ":" + (t.value ?? ""));
      out = {comments, tokens};
      break;
    } catch (e) {}
  }
  console.log(JSON.stringify(out));
}
"""


@pytest.fixture(scope="module")
def debian() -> Path:
    ensure_packages(PACKAGES, progress=False)
    return debian_dir() / "root"


def _files(root: Path, pattern: str, limit: int) -> list[Path]:
    files = sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())
    return files[:: max(1, len(files) // limit)][:limit]


def _without_docstrings(tree: ast.Module) -> str:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    node.body = node.body[1:] or ([] if isinstance(node, ast.Module) else [ast.Pass()])
    return ast.dump(tree)


def test_python_standard_library_keeps_its_tree_less_docstrings_and_loses_every_comment() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [stdlib / n for n in ("argparse.py", "functools.py", "tokenize.py", "json/decoder.py", "asyncio/tasks.py")]
    files += _files(stdlib / "email", "*.py", 20)
    removed = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        done = strip_comments(text, "python")
        assert done.status == STRIPPED, path
        assert ast.dump(ast.parse(done.text)) == _without_docstrings(ast.parse(text)), path
        tokens = list(tokenize.generate_tokens(io.StringIO(done.text).readline))
        assert not [t for t in tokens if t.type == tokenize.COMMENT], path
        removed += done.removed_chars
    assert removed > 100_000  # argparse alone has tens of kilobytes of docstrings and comments


def test_python_strings_that_are_not_docstrings_stay() -> None:
    text = 'def f():  # c\n    """doc"""\n\n\nx = "# not a comment"\nclass A: "doc"; y = 1\n'
    done = strip_comments(text, "python")
    assert done.text == 'def f():\n    pass\n\n\nx = "# not a comment"\nclass A: y = 1\n'
    assert strip_comments("print 'python 2'\n", "python").status == UNPARSED


def test_javascript_has_the_same_tokens_and_no_comment_for_acorn(debian: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed to run acorn (Debian's nodejs, on every machine of this project)"
    nodejs = debian / "node-acorn/usr/share/nodejs"
    files = _files(nodejs, "acorn*/dist/*.js", 12) + _files(debian / "node-lodash/usr/share/nodejs", "lodash/*.js", 40)
    stripped = []
    for i, path in enumerate(files):
        out = tmp_path / f"{i}.js"
        out.write_text(strip_comments(path.read_text(encoding="utf-8"), "javascript").text, encoding="utf-8")
        stripped.append(out)
    script = tmp_path / "tokens.js"
    script.write_text(TOKENS_JS)

    def tokens(paths: list[Path]) -> list[dict | None]:
        run = subprocess.run([node, str(script), str(nodejs / "acorn"), *map(str, paths)], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return [json.loads(line) for line in run.stdout.splitlines()]

    before, after = tokens(files), tokens(stripped)
    assert sum(b["comments"] for b in before if b) > 500
    for path, b, a in zip(files, before, after, strict=True):
        assert b is not None, path  # every file tokenizes as it ships
        assert a is not None and a["comments"] == 0 and a["tokens"] == b["tokens"], path


def _gcc(text: str, lang: str, *flags: str) -> list[str]:
    cmd = ["gcc", *flags, "-x", "c++" if lang == "cpp" else "c", "-fpreprocessed", "-dD", "-E", "-P", "-"]
    return subprocess.run(cmd, input=text, capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize(
    ("lang", "package", "pattern"),
    [
        ("c", "libbitstream-dev", "usr/include/**/*.h"),
        ("cpp", "libasio-dev", "usr/include/asio/**/*.hpp"),
        ("go", "golang-github-spf13-cobra-dev", "**/*.go"),
        ("go", "golang-github-sirupsen-logrus-dev", "**/*.go"),
    ],
)
def test_c_family_code_is_what_gccs_preprocessor_leaves_with_no_comment_left(
    debian: Path, lang: str, package: str, pattern: str
) -> None:
    """gcc -fpreprocessed drops comments and nothing else; Go lexes as C but for its raw strings (left out here,
    tested on literals below)."""
    assert shutil.which("gcc") is not None, "gcc is needed for its preprocessor (on every machine of this project)"
    files = [p for p in _files(debian / package, pattern, 40) if "`" not in p.read_text(encoding="utf-8")]
    assert len(files) >= 8
    removed = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        done = strip_comments(text, lang)
        assert _gcc(done.text, lang) == _gcc(text, lang), path
        assert _gcc(done.text, lang, "-C") == _gcc(done.text, lang), path  # -C keeps comments: there are none
        removed += done.removed_chars
    assert removed > 1000


def test_literals_that_look_like_comments_stay() -> None:
    go = 'x := `raw // not a comment\n/* nor this */` // gone\nr := \'"\' /* gone */ + "//"\n'
    assert strip_comments(go, "go").text == 'x := `raw // not a comment\n/* nor this */`\nr := \'"\'  + "//"\n'
    js = "const u = `${a /* c */ + `//${b}`}` // c\nconst r = /\\/\\/x/g; // c\nconst s = a / b / c;\n"
    assert strip_comments(js, "javascript").text == "const u = `${a  + `//${b}`}`\nconst r = /\\/\\/x/g;\n" \
        "const s = a / b / c;\n"  # fmt: skip
    rust = "fn f<'a>(x: &'a str) -> char { /* outer /* nested */ */ let s = r#\"// \"#; '\"' } // c\n"
    assert strip_comments(rust, "rust").text == "fn f<'a>(x: &'a str) -> char {  let s = r#\"// \"#; '\"' }\n"
    cpp = 'auto s = R"x(/* raw */)x"; // c\nint n = 1\'000; /* a\n b */ int m;\n'
    assert strip_comments(cpp, "cpp").text == 'auto s = R"x(/* raw */)x";\nint n = 1\'000;\n int m;\n'
    assert strip_comments("(* OCaml *)", "ocaml").status == UNKNOWN


def test_shell_and_yaml_comments(debian: Path) -> None:
    for path in [
        debian / "dpkg/usr/share/dpkg/sh/dpkg-error.sh",
        debian / "libbitstream-dev/usr/share/doc/libbitstream-dev/examples/dvb_gen_si.test.sh",
    ]:
        text = path.read_text(encoding="utf-8")
        done = strip_comments(text, "shell")
        assert done.removed_chars > 0 and subprocess.run(["bash", "-n"], input=done.text, text=True).returncode == 0
        assert not [line for line in done.text.splitlines() if re.match(r"\s*#", line)], path
    heredoc = 'cat <<EOF\n# kept: data\nEOF\necho "#x" $# ${#a} a#b # gone\n'
    assert strip_comments(heredoc, "shell").text == 'cat <<EOF\n# kept: data\nEOF\necho "#x" $# ${#a} a#b\n'
    for path in (Path(__file__).parents[1] / "pipelines").glob("**/*.yaml"):
        text = path.read_text(encoding="utf-8")
        done = strip_comments(text, "yaml")
        assert yaml.safe_load(done.text) == yaml.safe_load(text) and "#" not in done.text, path
    block = "a: |\n  # kept: text\nb: 'it''s # kept' # gone\n"
    assert strip_comments(block, "yaml").text == "a: |\n  # kept: text\nb: 'it''s # kept'\n"
