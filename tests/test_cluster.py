"""Issue 9 at scale: a Ray worker killed mid-build, and a three-node Ray cluster on this machine.

Both must end with the bytes of a clean local build: a build that runs for days on a shared cluster loses workers
and spreads over nodes, and neither may change a single shard.  The processes are found through ``/proc`` (Linux
only): the Ray processes of one build or one node share the session id of the process that started them.
"""

from __future__ import annotations

import json
import os
import secrets
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

from tests.corpus import write_mix
from tests.test_build import build, digests

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray processes through /proc")

BUILD = [sys.executable, "-m", "pipelines.build"]
RAY = str(Path(sys.executable).with_name("ray"))
NODES = ("node_a", "node_b", "node_c")  # one custom resource per node, so the three are told apart
TIMEOUT = 600


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


# -- 2. a three-node cluster on this machine ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """Three ``ray start --block`` processes, each the session leader of its node's Ray processes."""

    temp_dir: Path
    env: dict[str, str]
    nodes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return (self.temp_dir / "ray_current_cluster").read_text().strip()  # written by `ray start --head`

    def start_node(self, name: str, *args: str) -> None:
        ports = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port")
        cmd = [
            RAY,
            "start",
            "--block",  # stays in the foreground: SIGTERM to it stops its node, and only its node
            "--num-cpus=1",
            f"--resources={json.dumps({name: 1})}",
            f"--temp-dir={self.temp_dir}",
            "--object-store-memory=400000000",
            "--disable-usage-stats",
            f"--runtime-env-agent-port={free_port()}",
            *(f"--{p}={free_port()}" for p in ports),  # not Ray's fixed defaults: other Rays may run here
            *args,
        ]
        log = self.temp_dir / f"{name}.log"
        with log.open("wb") as sink:
            node = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.nodes.append(node)
        # one node at a time: nodes of one machine share the session directory, and pick their socket names there
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
def cluster() -> Iterator[Cluster]:
    """A head and two worker nodes with one CPU each, stopped even when the test fails."""
    # short: Ray's unix sockets live under it (108 bytes at most); distinct from the local Rays in /tmp/ray
    temp_dir = Path(tempfile.mkdtemp(prefix="raytest-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
    env |= {
        "RAY_AUTH_MODE": "token",  # the cluster listens on this machine's address: a token of its own
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # stop at once on SIGTERM (the default waits 30 s)
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    c = Cluster(temp_dir, env)
    try:
        c.start_node(NODES[0], "--head", f"--port={free_port()}", "--include-dashboard=false",
                     f"--dashboard-port={free_port()}")  # fmt: skip
        for name in NODES[1:]:
            c.start_node(name, f"--address={c.address}")
        yield c
    finally:
        c.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


PROBE = """
import json, sys, time
import ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 120
while len([n for n in ray.nodes() if n["Alive"]]) < 3 and time.monotonic() < deadline:
    time.sleep(0.2)
print(json.dumps([n["Resources"] for n in ray.nodes() if n["Alive"]]))
"""


def test_three_node_cluster_builds_the_same_bytes(
    corpus: Path, reference: dict[str, str], cluster: Cluster, tmp_path: Path
) -> None:
    """`--ray-address` on a head + two workers started by `ray start`: work on all three nodes, same bytes."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, cluster.address], capture_output=True, text=True, env=cluster.env, timeout=180
    )
    assert probe.returncode == 0, probe.stderr[-3000:] + cluster.log_tail()
    nodes = json.loads(probe.stdout.strip().splitlines()[-1])
    assert sorted(name for r in nodes for name in r if name in NODES) == list(NODES), f"{nodes}\n{cluster.log_tail()}"
    assert all(r["CPU"] == 1 for r in nodes)

    out = tmp_path / "testmix"
    mix = write_mix(tmp_path, corpus, name="testmix")
    log = tmp_path / "build.log"
    sessions = {node.pid: name for node, name in zip(cluster.nodes, NODES, strict=True)}
    busy: dict[str, set[str]] = {name: set() for name in NODES}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*BUILD, "--mix", str(mix), "--out", str(out), "--ray-address", cluster.address],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=cluster.env,
            start_new_session=True,
        )
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
    report = json.loads((out / "report.json").read_text())
    assert report["workers"] == 3  # the whole cluster's CPUs, one per node
    assert all(busy.values()), {name: sorted(titles) for name, titles in busy.items()}  # work ran on every node
    assert digests(out) == reference
