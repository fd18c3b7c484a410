"""Licences: SPDX names from Debian and package metadata, real licence texts, SPDX headers, git repositories'
licences in meta, and the licence filter through the quality stage."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from dataengine.config import FilterSpec, PathSpec, SourceConfig
from dataengine.filters import QualityStage, build_rule
from dataengine.licenses import PERMISSIVE, allowed, from_license_text, normalise, spdx_header
from dataengine.schema import doc_row, rows_to_table
from tests.corpus import LICENSES, STDLIB
from tests.hostile import git_commit_all, git_init
from tests.test_readers import read_all

# Debian copyright short names (as counted in /usr/share/doc/*/copyright) and package-metadata spellings.
NAMES = {
    "Expat": "MIT",
    "MIT License": "MIT",
    "BSD-3-clause": "BSD-3-Clause",
    "BSD-2-clause": "BSD-2-Clause",
    "The BSD 2-Clause License": "BSD-2-Clause",
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-2": "GPL-2.0-only",
    "GPL-3+": "GPL-3.0-or-later",
    "GPLv3+": "GPL-3.0-or-later",
    "GPL-2.0+": "GPL-2.0-or-later",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-2+": "LGPL-2.0-or-later",
    "Apache-2": "Apache-2.0",
    "Apache-2.0": "Apache-2.0",
    "Apache 2.0": "Apache-2.0",
    "Apache License, Version 2.0": "Apache-2.0",
    "MPL-2.0": "MPL-2.0",
    "PSF-2": "PSF-2.0",
    "PSF-2.0": "PSF-2.0",
    "Python": "PSF-2.0",
    "ISC": "ISC",
    "ISC License": "ISC",
    "Zlib": "Zlib",
    "BSL-1.0": "BSL-1.0",
    "Boost": "BSL-1.0",
    "CC0": "CC0-1.0",
    "CC0-1.0": "CC0-1.0",
    "public-domain": "LicenseRef-public-domain",
    "Unlicense": "Unlicense",
    "0BSD": "0BSD",
    "  BSD-3-Clause": "BSD-3-Clause",
    "MIT or Apache-2.0": "MIT OR Apache-2.0",
    "Apache-2.0 | MIT": "Apache-2.0 OR MIT",
    "MIT/Apache-2.0": "MIT OR Apache-2.0",
    "MIT, Apache-2.0": "MIT OR Apache-2.0",
    "GPL-1+ or Artistic": "GPL-1.0-or-later OR Artistic-1.0-Perl",
    "BSL-1.0 and Jam": "BSL-1.0 AND LicenseRef-Jam",
    "GPL-2+ or Artistic-2.0, and BSD-3-clause": "(GPL-2.0-or-later OR Artistic-2.0) AND BSD-3-Clause",
    "GPL-2+ with Autoconf exception": "GPL-2.0-or-later WITH Autoconf-exception-generic",
    # Linux's UAPI headers: one spelling whatever the parentheses, so equal licences count together
    "((GPL-2.0+ WITH Linux-syscall-note) OR BSD-3-Clause)": "GPL-2.0-or-later WITH Linux-syscall-note OR BSD-3-Clause",
    "(GPL-2.0 WITH Linux-syscall-note)": "GPL-2.0-only WITH Linux-syscall-note",
    "OpenLDAP-2.8": "LicenseRef-OpenLDAP-2.8",
    "Permission to use, copy, modify, and distribute this software and its": (
        "LicenseRef-Permission-to-use-copy-modify-and-distribute-this-software-and-its"
    ),
    "(MIT or": "LicenseRef-MIT-or",
}


@pytest.mark.parametrize("name", NAMES)
def test_normalise_maps_debian_and_metadata_names_to_spdx(name: str) -> None:
    spdx = normalise(name)
    assert spdx == NAMES[name]
    assert normalise(spdx) == spdx  # SPDX in, the same SPDX out


# The texts Debian ships in /usr/share/common-licenses, and the licence of the running Python.
TEXTS = {
    LICENSES / "Apache-2.0": "Apache-2.0",
    LICENSES / "Artistic": "Artistic-1.0-Perl",
    LICENSES / "BSD": "BSD-3-Clause",
    LICENSES / "CC0-1.0": "CC0-1.0",
    LICENSES / "GFDL-1.3": "GFDL-1.3-only",
    LICENSES / "GPL-1": "GPL-1.0-only",
    LICENSES / "GPL-2": "GPL-2.0-only",
    LICENSES / "GPL-3": "GPL-3.0-only",
    LICENSES / "LGPL-2": "LGPL-2.0-only",
    LICENSES / "LGPL-2.1": "LGPL-2.1-only",
    LICENSES / "LGPL-3": "LGPL-3.0-only",
    LICENSES / "MPL-1.1": "MPL-1.1",
    LICENSES / "MPL-2.0": "MPL-2.0",
    STDLIB / "LICENSE.txt": "PSF-2.0",  # history, then PSF, BeOpen, CNRI, CWI and 0BSD licences
}


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_licence_texts_debian_ships(path: Path) -> None:
    assert from_license_text(path.read_text()) == TEXTS[path]


def dist_license_text(package: str) -> tuple[str, str]:
    """An installed package's declared licence (METADATA's License-Expression, else License) and the text of its
    first License-File (PEP 639 puts it under ``licenses/``)."""
    dist = importlib.metadata.distribution(package)
    declared = dist.metadata["License-Expression"] or dist.metadata["License"]
    name = (dist.metadata.get_all("License-File") or [""])[0]
    text = (dist.read_text(f"licenses/{name}") or dist.read_text(name)) if name else None
    assert declared and text, f"{package}: no declared licence or no licence file in its dist-info"
    return declared, text


# Dependencies of the project (or of its dependencies); the expected id is checked against their METADATA too.
PACKAGES = {
    "urllib3": "MIT",
    "pyyaml": "MIT",
    "pydantic": "MIT",
    "attrs": "MIT",
    "charset-normalizer": "MIT",
    "idna": "BSD-3-Clause",
    "click": "BSD-3-Clause",
    "markupsafe": "BSD-3-Clause",
    "requests": "Apache-2.0",
    "pyarrow": "Apache-2.0",  # Apache's text, then the licences of bundled code
    "warcio": "Apache-2.0",  # the "Apache License" title line is missing
    "ray": "Apache-2.0",  # the file holds only "Apache 2.0"
    "certifi": "MPL-2.0",
}


@pytest.mark.parametrize("package", PACKAGES)
def test_licence_files_of_installed_packages_match_their_metadata(package: str) -> None:
    declared, text = dist_license_text(package)
    assert normalise(declared) == PACKAGES[package]
    assert from_license_text(text) == PACKAGES[package]


def test_text_that_names_no_licence() -> None:
    assert from_license_text("Copyright 2020 Someone. All rights reserved.\nSee the website.\n") is None
    assert from_license_text("Some custom terms") is None


def test_spdx_header_in_the_first_lines() -> None:
    assert spdx_header("#!/usr/bin/env python\n# SPDX-License-Identifier: MIT OR Apache-2.0\nimport os\n") == (
        "MIT OR Apache-2.0"
    )
    assert spdx_header("/* SPDX-License-Identifier: GPL-2.0+ WITH Linux-syscall-note */\n") == (
        "GPL-2.0-or-later WITH Linux-syscall-note"
    )
    assert spdx_header("<!-- SPDX-License-Identifier: BSD-3-Clause -->\n<html>") == "BSD-3-Clause"
    assert spdx_header("\n" * 30 + "// SPDX-License-Identifier: MIT\n") is None  # too far down
    assert spdx_header("// SPDX-License-Identifier: (MIT OR\n") is None  # not an expression
    assert spdx_header("int main(void) { return 0; }\n") is None


def test_allowed_or_and_with() -> None:
    assert allowed("MIT OR GPL-3.0-only", PERMISSIVE)
    assert not allowed("MIT AND GPL-3.0-only", PERMISSIVE)
    assert allowed("Apache-2.0 WITH LLVM-exception", PERMISSIVE)
    assert not allowed("GPL-2.0-only WITH Classpath-exception-2.0", PERMISSIVE)
    assert allowed("(GPL-2.0-only OR MIT) AND (BSD-3-Clause OR LGPL-2.1-only)", PERMISSIVE)
    assert not allowed("GPL-2.0-only OR MIT AND LGPL-2.1-only", PERMISSIVE)  # AND binds first
    assert allowed("GPL-3.0-only", frozenset({"GPL-3.0-only"}))
    with pytest.raises(ValueError, match="not an SPDX licence expression"):
        allowed("MIT OR", PERMISSIVE)


# -- git repositories ---------------------------------------------------------------------------------------------


def licence_repos(tmp_path: Path) -> SourceConfig:
    """Three real repositories: MIT (urllib3's LICENSE.txt) with an Apache-2.0 SPDX header in one file; GPL-3
    (Debian's text as COPYING), listed a second time with a declared licence; and one with no licence file."""
    mit = git_init(tmp_path / "mit")
    (mit / "LICENSE").write_text(dist_license_text("urllib3")[1])
    (mit / "vendored.py").write_text("# SPDX-License-Identifier: Apache-2.0\n\ndef f():\n    return 1\n")
    (mit / "plain.py").write_text("def g():\n    return 2\n")
    (mit / "docs").mkdir()
    (mit / "docs" / "COPYING").write_text((LICENSES / "GPL-3").read_text())  # not top-level: not the repo's
    gpl = git_init(tmp_path / "gpl")
    (gpl / "COPYING").write_text((LICENSES / "GPL-3").read_text())
    (gpl / "main.c").write_text("int main(void) { return 0; }\n")
    bare = git_init(tmp_path / "bare")
    (bare / "x.go").write_text("package x\n")
    for repo in (mit, gpl, bare):
        git_commit_all(repo)
    declared = PathSpec(path=str(gpl), meta={"repo": "declared", "license": "Expat"})
    return SourceConfig(name="code", kind="git", paths=[str(mit), str(gpl), declared, str(bare)])


def test_git_documents_carry_the_repository_licence_or_their_header(tmp_path: Path) -> None:
    rows = read_all(licence_repos(tmp_path))
    metas = {r["url"]: json.loads(r["meta"]) for r in rows}
    licences = {url: (meta["license"], meta.get("license_from")) for url, meta in metas.items()}
    assert licences == {
        "mit/LICENSE": ("MIT", "LICENSE"),
        "mit/plain.py": ("MIT", "LICENSE"),
        "mit/docs/COPYING": ("MIT", "LICENSE"),
        "mit/vendored.py": ("Apache-2.0", "spdx_header"),
        "gpl/COPYING": ("GPL-3.0-only", "LICENSE"),
        "gpl/main.c": ("GPL-3.0-only", "LICENSE"),
        "declared/COPYING": ("MIT", "meta"),
        "declared/main.c": ("MIT", "meta"),
        "bare/x.go": ("NOASSERTION", None),
    }


def test_a_dual_licence_in_two_files_is_either_licence(tmp_path: Path) -> None:
    """Rust crates ship LICENSE-MIT and LICENSE-APACHE: the user may take either; ``license_test.go`` is code."""
    repo = git_init(tmp_path / "dual")
    (repo / "LICENSE-MIT").write_text(dist_license_text("urllib3")[1])
    (repo / "LICENSE-APACHE").write_text((LICENSES / "Apache-2.0").read_text())
    (repo / "license_test.go").write_text("package license\n\n// Permission is hereby granted, free of charge\n")
    git_commit_all(repo)
    rows = read_all(SourceConfig(name="code", kind="git", paths=[str(repo)]))
    assert {json.loads(r["meta"])["license"] for r in rows} == {"Apache-2.0 OR MIT"}


def test_source_dir_normalises_its_declared_licence(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.rs").write_text("// SPDX-License-Identifier: MIT OR Apache-2.0\nfn main() {}\n")
    source = SourceConfig(name="s", kind="source_dir", paths=[PathSpec(path=str(tmp_path), meta={"license": "GPL-2+"})])
    metas = {json.loads(r["meta"])["path"]: json.loads(r["meta"]) for r in read_all(source)}
    assert (metas["a.py"]["license"], metas["a.py"]["license_from"]) == ("GPL-2.0-or-later", "meta")
    assert (metas["b.rs"]["license"], metas["b.rs"]["license_from"]) == ("MIT OR Apache-2.0", "spdx_header")


# -- the filter -----------------------------------------------------------------------------------------------------


def judge(source: SourceConfig, rows: list[dict], **params: object) -> dict[str, str | None]:
    stage = QualityStage([FilterSpec(name="license", domains=["code"], params=params)], [source])
    out = stage(rows_to_table(rows))
    return dict(zip(out["url"].to_pylist(), out["reject"].to_pylist(), strict=True))


def test_licence_filter_keeps_permissive_code_through_the_quality_stage(tmp_path: Path) -> None:
    source = licence_repos(tmp_path)
    rows = read_all(source)
    assert judge(source, rows) == {
        "mit/LICENSE": None,
        "mit/plain.py": None,
        "mit/docs/COPYING": None,
        "mit/vendored.py": None,
        "gpl/COPYING": "license:not_permitted",
        "gpl/main.c": "license:not_permitted",
        "declared/COPYING": None,
        "declared/main.c": None,
        "bare/x.go": "license:unknown",
    }
    kept = judge(source, rows, allow=["GPL-3.0-only", "Apache-2"], unknown="keep")
    assert {url for url, reason in kept.items() if reason is None} == {
        "mit/vendored.py",
        "gpl/COPYING",
        "gpl/main.c",
        "bare/x.go",
    }


def test_licence_filter_normalises_what_it_judges_and_checks_its_parameters() -> None:
    source = SourceConfig(name="code", kind="jsonl", paths=[], domain="code")
    rows = [
        doc_row(source="code", kind="code", url="a", text="x", meta={"license": "Expat"}),
        doc_row(source="code", kind="code", url="b", text="x", meta={"license": "LGPL-3+ or GPL-2+"}),
        doc_row(source="code", kind="code", url="c", text="x", meta={"license": "BSD-3-clause or GPL-2"}),
        doc_row(source="code", kind="code", url="d", text="x", meta={}),
    ]
    assert judge(source, rows, allow=["permissive", "LGPL-3+"]) == {
        "a": None,
        "b": None,
        "c": None,
        "d": "license:unknown",
    }
    for params in ({"allow": "copyleft"}, {"unknown": "maybe"}):
        with pytest.raises(ValueError, match="license: "):
            build_rule(FilterSpec(name="license", domains=["code"], params=params))


def test_source_and_mix_licenses_key_keeps_only_those_licences(tmp_path: Path) -> None:
    """``licenses:`` on a source (or on the mix, for every code source without one) runs the filter first in that
    source's chain, with no filter entry in the pipeline."""
    from dataengine.licenses import with_mix_licenses

    source = licence_repos(tmp_path)
    rows = [{**row, "text": row["raw"].decode()} for row in read_all(source)]  # as extracted
    [permissive_only] = with_mix_licenses([source], "permissive")
    stage = QualityStage([FilterSpec(name="min_length", domains=["code"], params={"min_chars": 1})], [permissive_only])
    out = stage(rows_to_table(rows))
    rejected = {u: r for u, r in zip(out["url"].to_pylist(), out["reject"].to_pylist(), strict=True) if r}
    assert rejected == {"gpl/COPYING": "license:not_permitted", "gpl/main.c": "license:not_permitted",
                        "bare/x.go": "license:unknown"}  # fmt: skip
    own = source.model_copy(update={"licenses": ["GPL-3.0-only"]})
    assert with_mix_licenses([own], "permissive") == [own]  # the source's own choice wins
    text = SourceConfig(name="web", kind="warc", paths=[], lang="en")
    assert with_mix_licenses([text], "permissive") == [text]  # prose has no licence filter
