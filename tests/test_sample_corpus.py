"""The embedded Debian sample corpus: its package list, metadata parsers and cache.

The corpus is fetched once per cache (the default ~/.cache/dataengine, or $DATAENGINE_CACHE); later
runs only read it.  The parsers are tested both on crafted inputs and on real files of the fetched
packages, because Debian's copyright files and npm/cargo manifests vary more than any example.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from dataengine.config import SourceConfig
from dataengine.sources import sample
from dataengine.sources.sample import (
    copyright_license,
    copyright_source_repo,
    debian_dir,
    ensure_packages,
    load_sample_spec,
    repo_name,
    sample_packages,
    sample_sources,
)

CODE_LANGS = {".py": "python", ".go": "go", ".rs": "rust", ".js": "javascript", ".h": "c", ".hpp": "c++"}


@pytest.fixture(scope="session")
def sources() -> list[SourceConfig]:
    """The corpus with its web pages as files (the build crawls the same files: see tests/test_sitemaps.py)."""
    return sample_sources(progress=False, web="files")


def _files(path: str) -> list[Path]:
    return [p for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink()]


# --- the package list ---------------------------------------------------------------------------


def test_yaml_lists_each_package_once_under_its_layout() -> None:
    spec = load_sample_spec()
    names = [s.package for s in spec.web_en + spec.web_zh] + [t.package for t in spec.code.trees]
    names += spec.code.go + spec.code.rust + spec.code.node
    assert len(names) == len(set(names)) == len(spec.packages())
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", n) for n in names)
    assert all(n.startswith("golang-") for n in spec.code.go)
    assert all(n.startswith("librust-") for n in spec.code.rust)
    assert all(n.startswith("node-") for n in spec.code.node)
    relative = [s.html_root for s in spec.web_en + spec.web_zh] + [t.root for t in spec.code.trees]
    assert not any(r.startswith("/") or ".." in r.split("/") for r in relative)


def test_yaml_rejects_unknown_fields(tmp_path: Path) -> None:
    bad = tmp_path / "sample.yaml"
    bad.write_text("web_en: [{package: x, html_root: y, lang: en}]\nweb_zh: []\ncode: {}\n")
    with pytest.raises(ValueError, match=r"web_en\.0\.lang"):
        load_sample_spec(bad)


# --- parsers on crafted inputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://github.com/tokio-rs/tokio", "github.com/tokio-rs/tokio"),
        ("git+https://github.com/babel/babel.git", "github.com/babel/babel"),
        ("git://github.com/highlightjs/highlight.js.git", "github.com/highlightjs/highlight.js"),
        ("git@github.com:mongodb/node-mongodb-native.git", "github.com/mongodb/node-mongodb-native"),
        ("https://github.com/less/less.js/downloads", "github.com/less/less.js"),
        ("https://www.github.com/a/b/tree/main/packages/c", "github.com/a/b"),
        ("expressjs/express", "github.com/expressjs/express"),
        ("github:ai/nanoid", "github.com/ai/nanoid"),
        ("gitlab:group/proj", "gitlab.com/group/proj"),
        ("https://gitlab.com/group/sub/proj/-/tree/main", "gitlab.com/group/sub/proj"),
        ("https://code.videolan.org/videolan/bitstream.git", "code.videolan.org/videolan/bitstream"),
        ("https://github.com/only-owner", None),
        ("https://www.openssl.org", None),
        ("not a url", None),
    ],
)
def test_repo_name(url: str, repo: str | None) -> None:
    assert repo_name(url) == repo


DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo
Source: https://demo.example.org/download
 https://github.com/demo/demo

Files: debian/*
Copyright: 2020 Someone
License: GPL-2+

Files: vendor/* *
Copyright: 2019 Upstream
License: MIT or Apache-2.0
 Permission is hereby granted...
"""


def test_copyright_license_takes_the_files_star_stanza() -> None:
    assert copyright_license(DEP5) == "MIT or Apache-2.0"
    assert copyright_source_repo(DEP5) == "github.com/demo/demo"  # the download page is no repository


def test_copyright_license_falls_back_to_the_first_license_line() -> None:
    text = "This package was debianized by X.\n\nLicense:\n\nLicense: BSD-like\n\nmore text\n"
    assert copyright_license(text) == "BSD-like"
    assert copyright_license("Copyright 2000 X.\nAll rights reserved.\n") is None
    assert copyright_source_repo("It was downloaded from http://python.org/\n") is None


# --- the fetched corpus ---------------------------------------------------------------------------


def test_sources_meet_the_corpus_targets(sources: list[SourceConfig]) -> None:
    web_en, web_zh, code = sources
    assert [(s.name, s.kind, s.lang) for s in sources] == [
        ("web_en", "html_dir", "en"),
        ("web_zh", "html_dir", "zh"),
        ("code", "source_dir", None),
    ]
    for web in (web_en, web_zh):
        pages = 0
        for spec in web.path_specs():
            assert Path(spec.path).is_absolute() and Path(spec.path).is_dir()
            assert spec.base_url == f"http://{spec.meta['package']}.sample.local/"
            assert set(spec.meta) == {"package", "version", "license"} and all(spec.meta.values())
            pages += sum(1 for p in _files(spec.path) if p.suffix in (".html", ".htm"))
        assert pages >= 3000, web.name

    size: Counter[str] = Counter()
    for spec in code.path_specs():
        assert set(spec.meta) == {"repo", "license", "package", "version"} and all(spec.meta.values())
        assert re.fullmatch(r"[a-z0-9.-]+\.[a-z]+(/[\w.-]+)+", spec.meta["repo"]), spec.meta["repo"]
        for p in _files(spec.path):
            if p.suffix in CODE_LANGS:
                size[CODE_LANGS[p.suffix]] += p.stat().st_size
    assert set(size) == set(CODE_LANGS.values())
    assert sum(size.values()) >= 50e6


def test_one_tree_per_upstream_repository(sources: list[SourceConfig]) -> None:
    by_path = {Path(s.path).relative_to(debian_dir() / "root").as_posix(): s.meta for s in sources[2].path_specs()}
    docker = "golang-github-docker-docker-dev/usr/share/gocode/src/github.com"
    assert by_path[f"{docker}/docker/cli"]["repo"] == "github.com/docker/cli"
    assert by_path[f"{docker}/moby/buildkit"]["repo"] == "github.com/moby/buildkit"
    assert by_path["node-jsdom/usr/share/nodejs/@types/jsdom"]["repo"] == "github.com/DefinitelyTyped/DefinitelyTyped"
    lodash = by_path["node-lodash/usr/share/nodejs/lodash"]  # package.json has no repository: copyright Source
    assert lodash["repo"] == "github.com/lodash/lodash"
    python = by_path["libpython3.11-stdlib/usr/lib/python3.11"]
    assert python["repo"] == "github.com/python/cpython" and python["license"] == "PSF-2.0"


def test_parsers_on_real_package_files(sources: list[SourceConfig]) -> None:
    root = debian_dir() / "root"
    serde = root / "librust-serde-dev"
    (crate,) = (serde / "usr/share/cargo/registry").iterdir()
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    assert repo_name(manifest["package"]["repository"]) == "github.com/serde-rs/serde"
    assert copyright_license((serde / "usr/share/doc/librust-serde-dev/copyright").read_text()) == "MIT or Apache-2.0"

    django = (root / "python3-django/usr/share/doc/python3-django/copyright").read_text()
    assert copyright_license(django) == "BSD-3-Clause"
    assert copyright_source_repo(django) is None  # www.djangoproject.com: so sample.yaml names the repo
    less = (root / "node-less/usr/share/doc/node-less/copyright").read_text()
    assert copyright_source_repo(less) == "github.com/less/less.js"
    mongodb = json.loads((root / "node-mongodb/usr/share/nodejs/mongodb/package.json").read_text())
    assert repo_name(mongodb["repository"]["url"]) == "github.com/mongodb/node-mongodb-native"


def test_packages_json_records_versions_and_hashes(sources: list[SourceConfig]) -> None:
    packages = sample_packages()
    assert list(packages) == load_sample_spec().packages()
    marker = json.loads((debian_dir() / "root/maint-guide/.unpacked.json").read_text())
    deb = debian_dir() / "debs" / marker["deb"]
    assert packages["maint-guide"] == {
        "version": marker["version"],
        "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
    }
    code_versions = {s.meta["package"]: s.meta["version"] for s in sources[2].path_specs()}
    assert all(packages[p]["version"] == v for p, v in code_versions.items())


def test_second_call_reuses_the_cache(sources: list[SourceConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    base = debian_dir()
    watched = [*base.glob("debs/*.deb"), *base.glob("root/*/.unpacked.json"), base / "packages.json"]
    before = {p: p.stat().st_mtime_ns for p in watched}

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the cached corpus ran {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    again = sample_sources(progress=False, web="files")
    assert [s.model_dump() for s in again] == [s.model_dump() for s in sources]
    assert {p: p.stat().st_mtime_ns for p in watched} == before


def test_half_unpacked_package_is_redone_without_download(
    sources: list[SourceConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = json.loads((debian_dir() / "root/maint-guide/.unpacked.json").read_text())
    cache = debian_dir(tmp_path)
    (cache / "debs").mkdir(parents=True)
    shutil.copy(debian_dir() / "debs" / marker["deb"], cache / "debs")
    (cache / "root/maint-guide/usr").mkdir(parents=True)  # an unpack cut short: no marker
    (cache / "root/.maint-guide-abc123").mkdir()  # the temp dir of a killed process

    real_run = subprocess.run

    def dpkg_only(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        assert cmd[0] == "dpkg-deb", f"unexpected {cmd}"
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(subprocess, "run", dpkg_only)
    info = ensure_packages(["maint-guide"], tmp_path, progress=False)
    assert info["maint-guide"] == marker
    assert (cache / "root/maint-guide/usr/share/doc/maint-guide/html/index.en.html").is_file()
    assert sorted(p.name for p in (cache / "root").iterdir()) == ["maint-guide"]


def test_unknown_package_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # never run apt-get update from a test
    with pytest.raises(RuntimeError, match="(?s)no package no-such-package-dataengine.*sudo apt-get update"):
        ensure_packages(["no-such-package-dataengine"], tmp_path, progress=False)
    assert not list((debian_dir(tmp_path) / "debs").iterdir())


def test_cache_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAENGINE_CACHE", str(tmp_path))
    assert debian_dir() == tmp_path.resolve() / "debian"
    monkeypatch.delenv("DATAENGINE_CACHE")
    assert debian_dir() == Path.home().resolve() / ".cache/dataengine/debian"
    assert sample.SAMPLE_YAML.is_file()
