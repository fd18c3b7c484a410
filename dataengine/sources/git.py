"""``git``: a real git repository (clone URL or local path) read at a ref, one document per file.

Safety: repositories are cloned ``--bare`` (no checkout, so no hooks and no smudge/clean filters run) and
read with ``git ls-tree``/``git cat-file --batch``, which never execute repository code.  Submodules,
symlinks and LFS pointer files become counted rejections, and so do tree paths a checkout would write
outside its work tree or into ``.git`` (``..``: ``unsafe_path``) and a tree with no file (``empty_repo``).

Licence: every document's meta names an SPDX ``license`` and where it came from (``license_from``): the
source's own ``license`` meta if it sets one (``meta``), else the repository's top-level LICENSE/COPYING file
(``LICENSE``, detected once per repository), else ``NOASSERTION``; a file's own ``SPDX-License-Identifier``
header overrides either (``spdx_header``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataengine.cache import cache_dir
from dataengine.config import SourceConfig
from dataengine.licenses import LICENSE_FILE, UNKNOWN, declared, from_license_text, header_license, normalise
from dataengine.schema import doc_row
from dataengine.sources.base import Unit, read_error

GIT_SAFE = ["-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never", "-c", "core.fsmonitor=false"]
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_LFS_SKIP_SMUDGE": "1"}
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def _git(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *GIT_SAFE, *args], env=env, capture_output=True, check=True, **kwargs)


def is_url(path: str) -> bool:
    return "://" in path or path.startswith("git@")


def local_repo(path: str) -> str:
    """A local git dir for ``path``: the path itself, or a bare clone of a URL in the cache (fetched once)."""
    if not is_url(path):
        return path
    dest = cache_dir() / "git" / hashlib.sha256(path.encode()).hexdigest()[:16]
    if not (dest / "HEAD").exists():
        tmp = dest.with_suffix(".tmp")
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _git(["clone", "--bare", "--quiet", "--no-recurse-submodules", path, str(tmp)], timeout=600)
        tmp.rename(dest)
    return str(dest)


def repo_name(path: str) -> str:
    """``github.com/OWNER/REPO`` from a clone URL, or the directory name of a local repository."""
    if is_url(path):
        tail = path.split("://", 1)[-1].removeprefix("git@").replace(":", "/")
        return tail.removesuffix(".git").rstrip("/")
    return Path(path).resolve().name


def unsafe_path(member: str) -> bool:
    """A tree path with a ``..``, ``.`` or empty component, or a ``.git`` one: made by hand (``git mktree``),
    never by ``git add``; a checkout or an export that trusted it would write outside its directory.
    """
    return any(part in ("", ".", "..") or part.lower() == ".git" for part in member.split("/"))


class GitReader:
    kind = "code"

    def units(self, source: SourceConfig) -> Iterator[Unit]:
        for i, spec in enumerate(source.path_specs()):
            name = spec.meta.get("repo") or repo_name(spec.path)
            try:
                repo = local_repo(spec.path)
                listing = _git(["-C", repo, "ls-tree", "-r", "-l", "-z", "--full-tree", source.ref], timeout=600).stdout
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                stderr = getattr(e, "stderr", b"") or b""
                detail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [str(e)]
                yield Unit(source.name, i, spec.path, error=f"git_unavailable: {detail[0]}", url=spec.path)
                continue
            entries = [entry for entry in listing.split(b"\0") if entry]
            if not entries:
                yield Unit(source.name, i, repo, error=f"empty_repo: no file at {source.ref}", url=spec.path)
            for entry in entries:
                info, path = entry.split(b"\t", 1)
                mode, otype, blob, size = info.split()
                member = path.decode("utf-8", "surrogateescape")
                url = f"{name}/{member}"
                if unsafe_path(member):
                    error = "unsafe_path: a '..', '.', empty or '.git' component"
                    yield Unit(source.name, i, repo, member, error=error, url=url)
                elif otype == b"commit":
                    yield Unit(source.name, i, repo, member, error="submodule: not followed", url=url)
                elif mode == b"120000":
                    yield Unit(source.name, i, repo, member, error="symlink: not followed", url=url)
                else:
                    yield Unit(source.name, i, repo, member, blob.decode(), int(size))

    def read(self, units: list[Unit], source: SourceConfig, max_bytes: int) -> Iterator[dict[str, Any]]:
        specs = source.path_specs()
        by_repo: dict[str, list[Unit]] = {}
        for unit in units:
            by_repo.setdefault(unit.path, []).append(unit)
        for repo, group in by_repo.items():
            wanted = [u for u in group if u.size <= max_bytes]
            blobs = _cat_blobs(repo, [u.blob for u in wanted]) if wanted else {}
            licences = {
                i: declared(specs[i].meta) or _repo_license(repo, source.ref, max_bytes)
                for i in {u.spec for u in group}
            }
            for unit in group:
                spec = specs[unit.spec]
                name = spec.meta.get("repo") or repo_name(spec.path)
                meta = {**spec.meta, "repo": name, "path": unit.member, "ref": source.ref, **licences[unit.spec]}
                url = f"{name}/{unit.member}"
                if unit.size > max_bytes:
                    yield read_error(source, meta, url, self.kind, "too_large", f"{unit.size} bytes > {max_bytes}")
                    continue
                raw = blobs[unit.blob]
                if raw.startswith(LFS_POINTER):
                    yield read_error(
                        source, meta, url, self.kind, "lfs_pointer", "git-lfs pointer, content not in repo"
                    )
                    continue
                meta |= header_license(raw)
                yield doc_row(source=source.name, kind=self.kind, url=url, raw=raw, meta=meta)


def _repo_license(repo: str, ref: str, max_bytes: int) -> dict[str, str]:
    """``license``/``license_from`` from the repository's top-level licence file (LICENSE, COPYING.md, ...).

    Lists the root tree only (not the recursive listing, which ``units`` made in another process) and reads the
    candidate files in one ``cat-file``; LICENSE is tried before COPYING, and the first one recognised names the
    licence.  Without one, a dual licence's files (LICENSE-MIT, LICENSE-APACHE) give ``MIT OR Apache-2.0``: the
    user may take either.  ``NOASSERTION`` when there is none, or none recognised.
    """
    listing = _git(["-C", repo, "ls-tree", "-l", "-z", ref]).stdout
    candidates: dict[str, str] = {}
    for entry in filter(None, listing.split(b"\0")):
        info, path = entry.split(b"\t", 1)
        mode, otype, blob, size = info.split()
        name = path.decode("utf-8", "surrogateescape")
        if otype == b"blob" and mode != b"120000" and int(size) <= max_bytes and LICENSE_FILE.fullmatch(name):
            candidates[name] = blob.decode()
    names = sorted(candidates, key=lambda n: (n.lower().startswith("copying"), n))
    texts = _cat_blobs(repo, [candidates[n] for n in names]) if names else {}
    found = {n: from_license_text(texts[candidates[n]].decode("utf-8", "replace")) for n in names}
    whole = [spdx for n, spdx in found.items() if spdx and not LICENSE_FILE.fullmatch(n).group("dual")]
    if whole:
        return {"license": whole[0], "license_from": "LICENSE"}
    dual = sorted({spdx for spdx in found.values() if spdx})
    if dual:
        return {"license": normalise(" OR ".join(dual)), "license_from": "LICENSE"}
    return dict(UNKNOWN)


def _cat_blobs(repo: str, blobs: list[str]) -> dict[str, bytes]:
    """Read many blobs with one ``git cat-file --batch`` process."""
    out = _git(["-C", repo, "cat-file", "--batch"], input="".join(b + "\n" for b in blobs).encode()).stdout
    found, pos = {}, 0
    for _ in blobs:
        header_end = out.index(b"\n", pos)
        sha, _type, size = out[pos:header_end].split()
        start = header_end + 1
        found[sha.decode()] = out[start : start + int(size)]
        pos = start + int(size) + 1
    return found
