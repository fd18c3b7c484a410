"""Issue 9 at scale: a Ray worker killed mid-build, and a three-node Ray cluster on this machine whose workers
share no filesystem with the driver.

Both must end with the bytes of a clean local build: a build that runs for days on a shared cluster loses workers
and spreads over nodes, and neither may change a single shard.  The processes are found through ``/proc`` (Linux
only): the Ray processes of one build or one node share the session id of the process that started them.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from dataengine import storage
from dataengine.cache import cache_dir
from tests.corpus import write_mix
from tests.s3 import S3Server
from tests.test_build import build, build_mix, digests

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray processes through /proc")

BUILD = [sys.executable, "-m", "pipelines.build"]
RAY = str(Path(sys.executable).with_name("ray"))
NODES = ("node_a", "node_b", "node_c")  # one custom resource per node, so the three are told apart
TIMEOUT = 600
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory, ray_local: None) -> dict[str, str]:
    """The digests of a clean local build of the test mix: what every build below must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "testmix"
    build(corpus, out, cpus=2)
    return digests(out)


# -- processes, read from /proc ----------------------------------------------------------------------------------
def ray_processes(sessions: set[int]) -> dict[int, tuple[int, str]]:
    """``{pid: (session id, title)}`` of the processes in these sessions (a Ray worker's title is ``ray::...``)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                sid = int(f.read().rsplit(b")", 1)[1].split()[3])  # after "pid (comm)": state ppid pgrp session
            if sid not in sessions:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        found[int(entry.name)] = (sid, title)
    return found


def is_map_worker(title: str) -> bool:
    """A Ray worker running one of our Ray Data map tasks or map actors."""
    return title.startswith(("ray::MapBatches(", "ray::MapWorker("))


def kill_group(leader: int, sig: signal.Signals = signal.SIGKILL) -> None:
    try:
        os.killpg(leader, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- 1. a worker killed in the middle of a build ------------------------------------------------------------------
# Each target is killed once, the first time a worker is seen busy with it: an actor mid-batch while the documents
# are filtered, a plain task during decontamination, and an actor mid-batch while they are tokenized.
KILL_TARGETS: dict[str, Callable[[str], bool]] = {
    "filter actor": lambda t: t.startswith("ray::MapWorker(") and "QualityStage" in t and t.endswith(".submit"),
    "decontamination task": lambda t: t.startswith("ray::MapBatches(") and "decontaminate_batch" in t,
    "tokenizer actor": lambda t: t.startswith("ray::MapWorker(") and "TokenizeStage" in t and t.endswith(".submit"),
}


def test_build_survives_killed_workers_with_the_same_bytes(
    corpus: Path, reference: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL of busy Ray workers (two actors, one task): Ray Data restarts and retries them, same bytes."""
    out = tmp_path / "testmix"
    mix = write_mix(tmp_path, corpus, name="testmix")
    log = tmp_path / "build.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*BUILD, "--mix", str(mix), "--out", str(out), "--workers", "2"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the build and its whole local Ray share this session id
        )
    killed: dict[str, str] = {}
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            for pid, (_, title) in ray_processes({proc.pid}).items():
                if is_map_worker(title):
                    seen.add(title)
                for name, wanted in KILL_TARGETS.items():
                    if name not in killed and wanted(title):
                        os.kill(pid, signal.SIGKILL)
                        killed[name] = title
                        break
            time.sleep(0.05)
        assert proc.poll() is not None, f"the build did not finish in {TIMEOUT} s"
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert set(killed) == set(KILL_TARGETS), f"never saw a worker to kill; busy workers seen: {sorted(seen)}"
    assert "killed while executing a task" in text  # the raylet saw work lost, which Ray Data then redid
    assert digests(out) == reference


# -- 2. a three-node cluster that shares no filesystem --------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """Three ``ray start --block`` processes, each the session leader of its node's Ray processes.

    A worker node started with ``hide`` runs in its own mount namespace (``unshare -m``) with an empty tmpfs over
    each hidden directory: what the driver writes there, that node cannot see, as on a cluster of separate machines.
    """

    temp_dir: Path
    env: dict[str, str]
    nodes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return (self.temp_dir / "head" / "ray_current_cluster").read_text().strip()  # written by `ray start --head`

    def start_node(self, name: str, *args: str, hide: tuple[Path, ...] = ()) -> None:
        ports = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port")
        node_dir = self.temp_dir / ("head" if "--head" in args else name)  # each node its own Ray temp dir
        cmd = [
            RAY,
            "start",
            "--block",  # stays in the foreground: SIGTERM to it stops its node, and only its node
            "--num-cpus=1",
            f"--resources={json.dumps({name: 1})}",
            f"--temp-dir={node_dir}",
            "--object-store-memory=400000000",
            "--disable-usage-stats",
            f"--runtime-env-agent-port={free_port()}",
            *(f"--{p}={free_port()}" for p in ports),  # not Ray's fixed defaults: other Rays may run here
            *args,
        ]
        if hide:  # mount the tmpfs, then become `ray start` (exec: the same process, so SIGTERM still reaches it)
            mounts = " && ".join(f"mount -t tmpfs tmpfs {shlex.quote(str(d))}" for d in hide)
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"', "sh", *cmd]
        log = self.temp_dir / f"{name}.log"
        with log.open("wb") as sink:
            node = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.nodes.append(node)
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in log.read_bytes():
            assert node.poll() is None and time.monotonic() < deadline, self.log_tail()
            time.sleep(0.2)

    def log_tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.temp_dir.glob("node_*.log")))

    def stop(self) -> None:
        """SIGTERM each node (workers first), then SIGKILL whatever of its session is left: never `ray stop`,
        which would stop every Ray on the machine."""
        for node in reversed(self.nodes):
            if node.poll() is None:
                node.terminate()
        for node in reversed(self.nodes):
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill_group(node.pid)
                node.wait()
        sessions, deadline = {n.pid for n in self.nodes}, time.monotonic() + 10
        while ray_processes(sessions) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in ray_processes(sessions):  # a straggler that left its process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head and two worker nodes with one CPU each, stopped even when the test fails.  The workers see neither
    the tests' files (inputs, outputs, stage caches) nor the driver's cache of trained models."""
    # short: Ray's unix sockets live under it (108 bytes at most); distinct from the local Rays in /tmp/ray
    temp_dir = Path(tempfile.mkdtemp(prefix="raytest-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
    env |= {
        "RAY_AUTH_MODE": "token",  # the cluster listens on this machine's address: a token of its own
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # stop at once on SIGTERM (the default waits 30 s)
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": str(REPO),  # the workers import this checkout's code, as the driver does
    }
    c = Cluster(temp_dir, env)
    hidden = (tmp_path_factory.getbasetemp(), cache_dir())
    try:
        c.start_node(NODES[0], "--head", f"--port={free_port()}", "--include-dashboard=false",
                     f"--dashboard-port={free_port()}")  # fmt: skip
        for name in NODES[1:]:
            c.start_node(name, f"--address={c.address}", hide=hidden)
        yield c
    finally:
        c.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


PROBE = """
import json, os, sys, time
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 120
while len([n for n in ray.nodes() if n["Alive"]]) < 3 and time.monotonic() < deadline:
    time.sleep(0.2)
sees = ray.remote(num_cpus=0)(lambda path: os.path.exists(path))
found = {}
for node in (n for n in ray.nodes() if n["Alive"]):
    pinned = sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
    name = next(r for r in node["Resources"] if r.startswith("node_"))
    found[name] = {"cpus": node["Resources"]["CPU"], "sees_driver_file": ray.get(pinned.remote(sys.argv[2]))}
print(json.dumps(found))
"""


def s3_corpus(corpus: Path, s3: S3Server, tmp_path: Path) -> Path:
    """The test corpus in the bucket, and a sources YAML naming it by ``s3://`` URIs only (its git repository as
    a ``source_dir`` of the checked-out files: a bucket holds files, not repositories)."""
    root, prefix = corpus.parent, "cluster-corpus"
    for sub in ("site_en", "site_zh", "warc", "jsonl"):
        s3.upload(root / sub, f"{prefix}/{sub}")
    for path in sorted((root / "repo").rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(root / "repo").parts:
            s3.upload(path, f"{prefix}/repo/{path.relative_to(root / 'repo').as_posix()}")
    sources = yaml.safe_load(corpus.read_text(encoding="utf-8"))
    for source in sources["sources"]:
        source["paths"] = [
            {**p, "path": s3.uri(f"{prefix}/{p['path']}")} if isinstance(p, dict) else s3.uri(f"{prefix}/{p}")
            for p in source["paths"]
        ]
        if source["kind"] == "git":
            source["kind"] = "source_dir"
    path = tmp_path / "sources-s3.yaml"
    path.write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    return path


def run_build(cluster: Cluster, log: Path, *args: str) -> dict[str, set[str]]:
    """``python -m pipelines.build ARGS --ray-address`` the cluster; the Ray Data workers seen busy on each node."""
    sessions = {node.pid: name for node, name in zip(cluster.nodes, NODES, strict=True)}
    busy: dict[str, set[str]] = {name: set() for name in NODES}
    with log.open("wb") as sink:
        proc = subprocess.Popen([*BUILD, *args, "--ray-address", cluster.address], stdout=sink,
                                stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            for sid, title in ray_processes(set(sessions)).values():
                if is_map_worker(title):
                    busy[sessions[sid]].add(title)
            time.sleep(0.1)
        assert proc.poll() is not None, f"the build did not finish in {TIMEOUT} s"
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:] + cluster.log_tail()
    return busy


def test_cluster_without_a_shared_filesystem_builds_the_same_bytes(
    corpus: Path, s3: S3Server, cluster: Cluster, ray_local: None, tmp_path: Path
) -> None:
    """Two workers that cannot see the driver's disk: inputs, outputs and the stage cache in S3, the models through
    Ray's object store.  The shards and manifest are a local build's bytes; a second build from the same stage
    cache into a local ``--out`` on the driver's disk (written by tasks on the driver's node) is identical again."""
    marker = tmp_path / "written-by-the-driver"
    marker.write_text("only the driver's node sees this")
    probe = subprocess.run([sys.executable, "-c", PROBE, cluster.address, str(marker)],
                           capture_output=True, text=True, env=cluster.env, timeout=180)  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:] + cluster.log_tail()
    nodes = json.loads(probe.stdout.strip().splitlines()[-1])
    assert nodes == {"node_a": {"cpus": 1, "sees_driver_file": True}, "node_b": {"cpus": 1, "sees_driver_file": False},
                     "node_c": {"cpus": 1, "sees_driver_file": False}}, cluster.log_tail()  # fmt: skip

    local = subprocess.run([*BUILD, "--mix", str(write_mix(tmp_path, corpus, name="local")), "--ray-address",
                            cluster.address], capture_output=True, text=True, env=cluster.env, timeout=300)  # fmt: skip
    assert local.returncode == 2 and "input directories are not on every node" in local.stderr, local.stderr[-3000:]

    mix = write_mix(tmp_path, s3_corpus(corpus, s3, tmp_path), name="testmix")
    reference = tmp_path / "reference" / "testmix"
    build_mix(mix, reference, cpus=2)  # the local build of the same sources, in this process's local Ray
    out, stages = s3.uri("cluster/testmix"), s3.uri("cluster/stages")
    busy = run_build(cluster, tmp_path / "build.log", "--mix", str(mix), "--out", out, "--stage-cache", stages)
    assert busy["node_b"] and busy["node_c"], {name: sorted(titles) for name, titles in busy.items()}
    assert digests(out) == digests(reference)
    assert json.loads(storage.read_text(storage.join(out, "report.json")))["workers"] == 3

    again = tmp_path / "local" / "testmix"
    run_build(cluster, tmp_path / "again.log", "--mix", str(mix), "--out", str(again), "--stage-cache", stages)
    assert digests(again) == digests(reference)
    assert json.loads((again / "report.json").read_text())["stage_cache"]["hit"] is True
