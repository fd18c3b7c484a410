"""The embedded default corpus ("sources: sample"): real documents from Debian's package registry.

Debian is the one registry of real, licensed HTML sites and source trees that every machine of this
project can reach, so the default corpus is a fixed list of its packages (pipelines/sources/sample.yaml).
Each package is fetched once with ``apt-get download`` and unpacked with ``dpkg-deb -x`` (no root
needed) into a cache that later runs reuse:

    $DATAENGINE_CACHE (default ~/.cache/dataengine)/debian/
        debs/PKG_VERSION_ARCH.deb
        root/PKG/...              the unpacked package, with root/PKG/.unpacked.json as its completion marker
        packages.json             package -> version, sha256 of the .deb (for the build's manifest)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from pydantic import Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dataengine.atomic import write_atomic
from dataengine.cache import cache_dir as default_cache_dir
from dataengine.config import PACKAGE_ROOT, CrawlConfig, PathSpec, SourceConfig, Strict, load_yaml, validated
from dataengine.shards.writer import sha256_file

SAMPLE_YAML = PACKAGE_ROOT / "pipelines" / "sources" / "sample.yaml"
MARKER = ".unpacked.json"
# Forges whose URLs name a repository as HOST/OWNER/REPO; a copyright `Source:` elsewhere is
# usually a download page, not a repository.
FORGES = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "salsa.debian.org")


class WebSite(Strict):
    package: str
    html_root: str
    index: str = "index.html"  # the site's start page, relative to html_root: where the crawl begins
    license: str | None = None


class CodeTree(Strict):
    package: str
    root: str
    repo: str | None = None
    license: str | None = None


class CodeSpec(Strict):
    trees: list[CodeTree] = Field(default_factory=list)
    go: list[str] = Field(default_factory=list)
    rust: list[str] = Field(default_factory=list)
    node: list[str] = Field(default_factory=list)


class SampleSpec(Strict):
    web_en: list[WebSite]
    web_zh: list[WebSite]
    code: CodeSpec

    def packages(self) -> list[str]:
        """Every package once, in file order."""
        names = [s.package for s in self.web_en + self.web_zh] + [t.package for t in self.code.trees]
        names += self.code.go + self.code.rust + self.code.node
        return list(dict.fromkeys(names))


def load_sample_spec(path: Path = SAMPLE_YAML) -> SampleSpec:
    """The package list, validated (unknown keys are errors, as in every config file)."""
    return validated(SampleSpec, load_yaml(path), path)


def debian_dir(cache_dir: Path | None = None) -> Path:
    """<cache>/debian, where cache is the argument, else $DATAENGINE_CACHE, else ~/.cache/dataengine."""
    return Path(cache_dir or default_cache_dir()).expanduser().resolve() / "debian"


# --- fetching -------------------------------------------------------------------------------------


def _run(cmd: list[str], what: str, cwd: Path | None = None, stream: bool = False) -> str:
    """Run a command; a failure names ``what`` and carries the tool's own message."""
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            check=True,
            text=True,
            stdout=2 if stream else subprocess.PIPE,  # fd 2: apt's "Get:" lines show as it goes
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise RuntimeError(f"{what} failed: {cmd[0]} not found (the sample corpus needs apt and dpkg)") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{what} failed: {(e.stderr or e.stdout or '').strip()}") from None
    return done.stdout or ""


def _candidates(packages: list[str]) -> dict[str, str]:
    """package -> the newest version the apt lists offer for download.

    ``apt-get download PKG`` alone asks for the *candidate* version, which is the installed one when
    the machine has a newer build than its lists (it then fails with "Can't find a source to
    download"); ``apt-cache madison`` lists only versions a repository serves.
    """
    out = _run(["apt-cache", "madison", *packages], f"apt-cache madison {' '.join(packages)}")
    versions: dict[str, str] = {}
    for line in out.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[2].endswith("Packages"):
            versions.setdefault(fields[0], fields[1])  # madison lists the newest first
    return versions


def _download_once(packages: list[str], debs: Path, progress: bool) -> None:
    versions = _candidates(packages)
    missing = [p for p in packages if p not in versions]
    if missing:
        raise RuntimeError(f"apt-get download failed: the apt lists have no package {', '.join(missing)}")
    with tempfile.TemporaryDirectory(dir=debs, prefix=".download-") as tmp:
        _run(
            ["apt-get", "download", *(f"{p}={versions[p]}" for p in packages)],
            f"apt-get download {' '.join(packages)}",
            cwd=Path(tmp),
            stream=progress,
        )
        for deb in Path(tmp).glob("*.deb"):
            deb.rename(debs / deb.name)


def _download(packages: list[str], debs: Path, progress: bool) -> None:
    """Download the .deb of each package into ``debs`` with one apt-get call (apt fetches in parallel).

    Files land in a temp dir first, so an interrupted download leaves no partial .deb behind.  When
    the lists lack a package (never updated) or name a version the mirror has dropped (stale), they
    are refreshed once and the download retried.
    """
    try:
        _download_once(packages, debs, progress)
    except RuntimeError as e:
        if os.geteuid() != 0:
            raise RuntimeError(f"{e}\nthe apt lists may be empty or stale: run `sudo apt-get update`") from None
        _run(["apt-get", "update", "-qq"], "apt-get update")
        _download_once(packages, debs, progress)


def _deb_of(package: str, debs: Path) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))  # Debian package names never contain "_"
    if len(found) > 1:
        raise RuntimeError(f"several .deb files for {package} in {debs}: {[d.name for d in found]}; remove stale ones")
    return found[0] if found else None


def _unpack(package: str, deb: Path, roots: Path) -> dict[str, str | int]:
    """Unpack into a temp dir, write the marker there, then rename: root/PKG exists only when complete."""
    fields = dict(
        line.split(": ", 1)
        for line in _run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"], f"dpkg-deb -f {deb}")
        .strip()
        .splitlines()
    )
    if fields.get("Package") != package:
        raise RuntimeError(f"{deb} holds package {fields.get('Package')!r}, expected {package!r}")
    info: dict[str, str | int] = {
        "version": fields["Version"],
        "architecture": fields["Architecture"],
        "deb": deb.name,
        "size": deb.stat().st_size,
        "sha256": sha256_file(deb),
    }
    tmp = Path(tempfile.mkdtemp(dir=roots, prefix=f".{package}-"))
    try:
        _run(["dpkg-deb", "-x", str(deb), str(tmp)], f"dpkg-deb -x {deb}")
        (tmp / MARKER).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        target = roots / package
        if target.exists():  # a dir without marker was not completed by this code: replace it
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialize fetches of one cache across processes (parallel test workers, Ray tasks)."""
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_packages(packages: list[str], cache_dir: Path | None = None, progress: bool = True) -> dict[str, dict]:
    """Download and unpack each package unless its completion marker is there; package -> marker info.

    A package whose unpacked dir lacks the marker is unpacked again from its cached .deb, which is
    downloaded only if absent, so a second call runs neither apt nor dpkg.
    """
    base = debian_dir(cache_dir)
    debs, roots = base / "debs", base / "root"
    debs.mkdir(parents=True, exist_ok=True)
    roots.mkdir(parents=True, exist_ok=True)
    with _locked(base / ".lock"):
        for stale in [*roots.glob(".*-*"), *debs.glob(".download-*")]:  # left by a killed process
            shutil.rmtree(stale)
        todo = [p for p in packages if not (roots / p / MARKER).is_file()]
        console = Console(stderr=True, quiet=not progress)
        to_download = [p for p in todo if _deb_of(p, debs) is None]
        if to_download:
            console.print(f"sample corpus: downloading {len(to_download)} Debian packages into {debs}")
            _download(to_download, debs, progress)
        if todo:
            columns = (TextColumn("sample corpus: unpacking {task.description}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, TimeElapsedColumn(), console=console, disable=not progress) as bar:
                task = bar.add_task("", total=len(todo))
                for package in todo:
                    bar.update(task, description=package)
                    deb = _deb_of(package, debs)
                    if deb is None:
                        raise RuntimeError(f"apt-get download {package} failed: no .deb appeared in {debs}")
                    info = _unpack(package, deb, roots)
                    bar.console.print(f"sample corpus: {package} {info['version']} ({int(info['size']) / 1e6:.1f} MB)")
                    bar.advance(task)
        return {p: json.loads((roots / p / MARKER).read_text(encoding="utf-8")) for p in packages}


def _write_packages_json(base: Path, infos: dict[str, dict]) -> None:
    """Rewrite packages.json only when it changes, atomically, so readers never see half a file."""
    blob = json.dumps({p: {"version": i["version"], "sha256": i["sha256"]} for p, i in infos.items()}, indent=1)
    path = base / "packages.json"
    if path.is_file() and path.read_text(encoding="utf-8") == blob + "\n":
        return
    write_atomic(path, blob + "\n")


def sample_packages(cache_dir: Path | None = None) -> dict[str, dict]:
    """package -> {version, sha256 of the .deb} of the fetched sample corpus (for the build's manifest)."""
    path = debian_dir(cache_dir) / "packages.json"
    if not path.is_file():
        raise ValueError(f"{path} not found: the sample corpus has not been fetched yet (sample_sources() does it)")
    return json.loads(path.read_text(encoding="utf-8"))


# --- metadata -------------------------------------------------------------------------------------


def repo_name(url: str) -> str | None:
    """An upstream repository as HOST/PATH (github.com/OWNER/REPO) from the URL forms that
    package.json, Cargo.toml and debian/copyright use; None when ``url`` names no repository."""
    url = url.strip()
    if m := re.fullmatch(r"(github|gitlab|bitbucket):([\w.-]+/[\w.-]+)", url):  # npm shorthand
        host, path = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}[m[1]], m[2]
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", url):  # npm and cargo shorthand: OWNER/REPO on GitHub
        host, path = "github.com", url
    elif m := re.fullmatch(r"[\w.-]+@([\w.-]+):(.+)", url):  # scp-like: git@github.com:OWNER/REPO.git
        host, path = m[1], m[2]
    else:
        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    host = host.lower().removeprefix("www.")
    segments = [s for s in path.split("/") if s]
    if host in FORGES:
        if "-" in segments:  # gitlab: /GROUP/SUBGROUP/REPO/-/tree/...
            segments = segments[: segments.index("-")]
        elif host != "gitlab.com" and host != "salsa.debian.org":
            segments = segments[:2]  # github: /OWNER/REPO/tree/main/...
        if len(segments) < 2:
            return None
    if not segments:
        return None
    segments[-1] = segments[-1].removesuffix(".git")
    return "/".join([host, *segments])


def _deb822_fields(paragraph: str) -> dict[str, str]:
    """Fields of one deb822 paragraph (continuation lines start with white space), keys lower-cased."""
    fields: dict[str, str] = {}
    key = None
    for line in paragraph.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif m := re.match(r"([\w-]+):\s*(.*)", line):
            key = m[1].lower()
            fields[key] = m[2].strip()
    return fields


def copyright_license(text: str) -> str | None:
    """The license of a debian/copyright file: the `Files: *` stanza's `License:` in the machine-readable
    (DEP-5) format, else the first non-empty `License:` line, else None."""
    paragraphs = re.split(r"\n[ \t]*\n", text)
    if "format" in _deb822_fields(paragraphs[0]):
        for paragraph in paragraphs[1:]:
            fields = _deb822_fields(paragraph)
            license_ = fields.get("license", "").split("\n")[0].strip()
            if "*" in fields.get("files", "").split() and license_:
                return license_
    m = re.search(r"(?im)^License:[ \t]*(\S.*)$", text)
    return m[1].strip() if m else None


def copyright_source_repo(text: str) -> str | None:
    """The first forge repository named in the copyright header's `Source:` field (it often lists
    several URLs, download pages among them)."""
    source = _deb822_fields(re.split(r"\n[ \t]*\n", text)[0]).get("source", "")
    for url in re.findall(r"\S+://\S+", source):
        repo = repo_name(url)
        if repo and repo.split("/")[0] in FORGES:
            return repo
    return None


class _Package:
    """An unpacked package: its dir, version and lazily read copyright text."""

    def __init__(self, roots: Path, name: str, info: dict) -> None:
        self.name, self.dir, self.version = name, roots / name, info["version"]

    def copyright(self) -> str:
        doc = self.dir / "usr/share/doc" / self.name
        if doc.is_symlink():  # packages of one source often share a doc dir: doc/PKG -> OTHER (also fetched)
            other = Path(os.readlink(doc)).name
            doc = self.dir.parent / other / "usr/share/doc" / other
        path = doc / "copyright"
        if not path.is_file():
            raise ValueError(f"{self.name}: no {path}; set `license:` and `repo:` in {SAMPLE_YAML}")
        return path.read_text(encoding="utf-8", errors="replace")

    def license(self, override: str | None = None) -> str:
        license_ = override or copyright_license(self.copyright())
        if not license_:
            raise ValueError(f"{self.name}: no License in its debian/copyright; set `license:` in {SAMPLE_YAML}")
        return license_

    def subdir(self, rel: str) -> Path:
        path = self.dir / rel
        if not path.is_dir():
            raise ValueError(f"{self.name} {self.version} has no directory {rel} (see {SAMPLE_YAML})")
        return path

    def repo(self, url: str | None, where: str) -> str:
        """The repository ``url`` names (package.json, Cargo.toml), else the copyright's forge `Source:`."""
        repo = (repo_name(url) if url else None) or copyright_source_repo(self.copyright())
        if not repo:
            raise ValueError(f"{self.name}: no repository for {where} (declared: {url!r}); set repo: in {SAMPLE_YAML}")
        return repo

    def spec(self, path: Path, repo: str, license_: str) -> PathSpec:
        meta = {"repo": repo, "license": license_, "package": self.name, "version": self.version}
        return PathSpec(path=str(path), meta=meta)


def _go_trees(pkg: _Package) -> list[PathSpec]:
    """usr/share/gocode/src/HOST/OWNER/REPO -> one tree each, repo = HOST/OWNER/REPO."""
    src = pkg.subdir("usr/share/gocode/src")
    stray = [p for p in src.rglob("*") if p.is_file() and len(p.relative_to(src).parts) <= 3]
    if stray:
        raise ValueError(f"{pkg.name}: files outside HOST/OWNER/REPO in gocode: {stray[:3]}")
    roots = sorted(p for p in src.glob("*/*/*") if p.is_dir() and not p.is_symlink())
    if not roots:
        raise ValueError(f"{pkg.name}: no HOST/OWNER/REPO tree under {src}")
    license_ = pkg.license()
    return [pkg.spec(r, r.relative_to(src).as_posix(), license_) for r in roots]


def _rust_trees(pkg: _Package) -> list[PathSpec]:
    """usr/share/cargo/registry/CRATE-VERSION -> one tree each, repo from its Cargo.toml."""
    crates = sorted(p for p in pkg.subdir("usr/share/cargo/registry").iterdir() if p.is_dir())
    if not crates:
        raise ValueError(f"{pkg.name}: no crate under usr/share/cargo/registry")
    license_ = pkg.license()
    specs = []
    for crate in crates:
        manifest = tomllib.loads((crate / "Cargo.toml").read_text(encoding="utf-8"))
        specs.append(pkg.spec(crate, pkg.repo(manifest["package"].get("repository"), crate.name), license_))
    return specs


def _node_trees(pkg: _Package) -> list[PathSpec]:
    """usr/share/nodejs/NAME and @SCOPE/NAME -> one tree each, repo from its package.json.

    Symlinked module dirs are Debian's aliases of modules shipped elsewhere and are not trees.
    """
    license_ = pkg.license()
    specs = []
    for base in (pkg.dir / "usr/share/nodejs", pkg.dir / "usr/lib/nodejs"):
        if not base.is_dir():
            continue
        for top in sorted(base.iterdir()):
            for module in sorted(top.iterdir()) if top.name.startswith("@") else [top]:
                if module.is_symlink() or not module.is_dir():
                    continue
                manifest_path = module / "package.json"
                if not manifest_path.is_file():
                    raise ValueError(f"{pkg.name}: module dir without package.json: {module}")
                repository = json.loads(manifest_path.read_text(encoding="utf-8")).get("repository")
                url = repository.get("url") if isinstance(repository, dict) else repository
                where = module.relative_to(base).as_posix()
                specs.append(pkg.spec(module, pkg.repo(url, where), license_))
    if not specs:
        raise ValueError(f"{pkg.name}: no module under usr/share/nodejs or usr/lib/nodejs")
    return specs


def sample_sources(
    cache_dir: Path | None = None, progress: bool = True, web: Literal["crawl", "files"] = "crawl"
) -> list[SourceConfig]:
    """The sample corpus as sources web_en, web_zh and code (source_dir), fetched on first use.

    ``web="crawl"`` (the build's default): each documentation site is served on 127.0.0.1 under its own host
    name (``PACKAGE.sample.local``) and crawled from its start page, link by link and through the sitemap
    its robots.txt names, into WARC files cached beside the packages; extraction then reads the WARC files
    as it would a crawl of the internet.  ``web="files"``: the same pages read straight from the unpacked
    packages (``html_dir``), for tests and benchmarks that need the files.  Every document's meta names its
    Debian package, version and license (and, for code, the upstream repository), so the manifest and the
    report can trace each document back.
    """
    spec = load_sample_spec()
    infos = ensure_packages(spec.packages(), cache_dir, progress)
    base = debian_dir(cache_dir)
    _write_packages_json(base, infos)
    packages = {name: _Package(base / "root", name, info) for name, info in infos.items()}

    def web_source(name: str, lang: str, sites: list[WebSite]) -> SourceConfig:
        paths, local_sites = [], {}
        for site in sites:
            pkg = packages[site.package]
            meta = {"package": pkg.name, "version": pkg.version, "license": pkg.license(site.license)}
            host, root = f"{pkg.name}.sample.local", pkg.subdir(site.html_root)
            if web == "files":
                paths.append(PathSpec(path=str(root), base_url=f"http://{host}/", meta=meta))
                continue
            if not (root / site.index).is_file():
                raise ValueError(f"{SAMPLE_YAML}: {site.package}: start page {site.index} not found in {root}")
            paths.append(PathSpec(path=f"http://{host}/{quote(site.index)}", meta=meta))
            local_sites[host] = str(root)
        if web == "files":
            return SourceConfig(name=name, kind="html_dir", lang=lang, paths=paths)
        return SourceConfig(
            name=name, kind="crawl", lang=lang, paths=paths, crawl=_sample_crawl(base, name, sites, infos, local_sites)
        )

    code: list[PathSpec] = []
    for tree in spec.code.trees:
        pkg = packages[tree.package]
        repo = tree.repo or pkg.repo(None, tree.root)
        code.append(pkg.spec(pkg.subdir(tree.root), repo, pkg.license(tree.license)))
    for names, trees_of in ((spec.code.go, _go_trees), (spec.code.rust, _rust_trees), (spec.code.node, _node_trees)):
        for name in names:
            code.extend(trees_of(packages[name]))
    return [
        web_source("web_en", "en", spec.web_en),
        web_source("web_zh", "zh", spec.web_zh),
        SourceConfig(name="code", kind="source_dir", paths=code),
    ]


def _sample_crawl(
    base: Path, name: str, sites: list[WebSite], infos: dict[str, dict], local_sites: dict[str, str]
) -> CrawlConfig:
    """How the sample's sites are crawled: politely as to any host, but with no delay (the server is ours).

    The crawl directory is keyed by the packages' exact .deb files and start pages, so a new Debian release
    crawls afresh and an unchanged one reuses (or resumes) the cached crawl.
    """
    key = json.dumps([[s.package, infos[s.package]["sha256"], s.html_root, s.index] for s in sites])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return CrawlConfig(
        contact="sample.local: the embedded sample corpus, served on this machine",
        out=str(base / "crawl" / f"{name}-{digest}"),
        delay=0.0,
        content_types=["text/html", "application/xhtml+xml"],
        local_sites=local_sites,
    )
