"""The sample pipeline on a real Spark standalone cluster (master + one worker on 127.0.0.1, started with
``spark-class``), submitted with ``spark-submit --py-files dist/mixlake-*.whl``; its outputs must equal a local-mode
run's (Delta table contents, MDS bytes), with the executor JVM killed (by PID, a child of the worker) once during
dedup and once during MDS writing: Spark relaunches it and retries the tasks; the outputs still equal.

Run alone with ``make cluster-test``; part of ``make test``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from lake_compare import lake_differences

from conftest import MODEL_ARGS, PIPELINE_ARGS, REPO, free_port, run_env

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

PY = sys.executable
SPARK_HOME = Path(__import__("pyspark").__file__).parent


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Standalone:
    """A Spark master and one worker (2 cores) on 127.0.0.1, stopped by PID."""

    def __init__(self, work: Path) -> None:
        self.port, self.ui, self.worker_ui = free_port(), free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        env = {**run_env(), "SPARK_HOME": str(SPARK_HOME), "SPARK_DAEMON_MEMORY": "512m",
               "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": PY}
        cls = str(SPARK_HOME / "bin" / "spark-class")
        self.logs = work / "daemons"
        self.logs.mkdir(parents=True)
        self.procs: list[subprocess.Popen] = []
        self.procs.append(subprocess.Popen(
            [cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
             "--webui-port", str(self.ui)], stdout=open(self.logs / "master.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            env=env, start_new_session=True))
        self.procs.append(subprocess.Popen(
            [cls, "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1", "--cores", "2",
             "--memory", "3g", "--work-dir", str(work / "worker"), "--webui-port", str(self.worker_ui)],
            stdout=open(self.logs / "worker.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT, env=env, start_new_session=True))
        self.worker_pid = self.procs[1].pid

    def wait_alive(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if _json(f"http://127.0.0.1:{self.ui}/json/").get("aliveworkers", 0) >= 1:
                    return
            except OSError:
                pass
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(1)
        raise RuntimeError("standalone cluster did not come up:\n" +
                           "\n".join((self.logs / f).read_text()[-2000:] for f in ("master.log", "worker.log")))

    def executor_pids(self) -> list[int]:
        return [c for c in _children(self.worker_pid) if "CoarseGrainedExecutorBackend" in _cmdline(c)]

    def stop(self) -> None:
        for pid in [*self.executor_pids(), *(p.pid for p in reversed(self.procs))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Standalone(tmp_path_factory.mktemp("standalone"))
    try:
        c.wait_alive()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def pipeline_args(sample_dir) -> list[str]:
    return [*PIPELINE_ARGS, f"sample.dir={sample_dir}"]


def submit(cluster: Standalone, wheel: Path, lake: Path, args: list[str], log: Path,
           on_line=None) -> tuple[int, float]:
    """``bin/mixlake-submit --master spark://... --py-files <wheel> jobs/pipeline.py`` from an unrelated CWD."""
    ui = free_port()
    cmd = [str(REPO / "bin" / "mixlake-submit"), "--master", cluster.url, "--conf", "spark.cores.max=2",
           "--executor-memory", "1g", "--driver-memory", "1g", "--conf", f"spark.ui.port={ui}",
           "--py-files", str(wheel), str(REPO / "jobs" / "pipeline.py"), f"lake={lake}", *args]
    t0 = time.time()
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env(),
                             cwd=lake.parent)
        assert p.stdout is not None
        for line in p.stdout:
            out.write(line)
            out.flush()
            if on_line:
                on_line(line, ui)
        rc = p.wait(timeout=1200)
    return rc, time.time() - t0


class ExecutorKiller:
    """Kills the executor JVM once while a given stage has running tasks (watched through the driver's REST API)."""

    def __init__(self, cluster: Standalone, stages: dict[str, tuple[str, float]]) -> None:
        # pipeline stage → (fragment of the Spark stage's call site, seconds into the pipeline stage)
        self.cluster, self.stages, self.killed = cluster, dict(stages), []
        self.current: str | None = None

    def on_line(self, line: str, ui: int) -> None:
        m = re.match(r"\[mixlake\] (\w+)\s+starting", line)
        if m and m.group(1) in self.stages:
            self.current = m.group(1)
            threading.Thread(target=self._watch, args=(m.group(1), ui), daemon=True).start()

    def _watch(self, stage: str, ui: int) -> None:
        fragment, delay = self.stages[stage]
        time.sleep(delay)
        deadline = time.time() + 120
        while time.time() < deadline and self.current == stage:
            try:
                (app,) = _json(f"http://127.0.0.1:{ui}/api/v1/applications")
                active = _json(f"http://127.0.0.1:{ui}/api/v1/applications/{app['id']}/stages?status=active")
            except (OSError, ValueError):
                active = []
            if any(fragment in s.get("name", "") + s.get("details", "") and s.get("numActiveTasks", 0) > 0
                   for s in active):
                pids = self.cluster.executor_pids()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    self.killed.append((stage, pids[0]))
                    return
            time.sleep(0.2)


def test_pipeline_on_standalone_with_executor_kills_equals_local(cluster, wheel, local_pipeline_lake, pipeline_args,
                                                                 tmp_path):
    """One submission covers both claims: the pipeline runs on a standalone cluster from the wheel, and an executor
    lost during dedup and during MDS writing changes nothing. (A separate clean submission took another ~250 s of the
    suite and checked a subset of this: its outputs had to equal the same local run.)"""
    lake = tmp_path / "lake"
    killer = ExecutorKiller(cluster, {"dedup": ("", 3.0), "write_mds": ("mixlake/mds/write.py", 0.0)})
    # each MDS task pauses after writing a part, so the kill lands while attempt files are on disk
    rc, seconds = submit(cluster, wheel, lake, [*pipeline_args, "mds.slow_part_seconds=2"],
                         tmp_path / "submit.log", killer.on_line)
    log = (tmp_path / "submit.log").read_text()
    assert rc == 0, log[-5000:]
    print(f"standalone pipeline with 2 executor kills: {seconds:.1f}s; killed {killer.killed}")
    # the driver ran the wheel's code, not the checkout's, and configs came from inside the wheel
    assert re.search(r"mixlake 0\.\d+\.\d+ from \S+\.whl/mixlake on spark://127\.0\.0\.1", log), log[-3000:]
    assert [s for s, _ in killer.killed] == ["dedup", "write_mds"]
    assert len(re.findall(r"Lost executor \d+", log)) >= 2, log[-5000:]
    assert re.search(r"Lost task .*ExecutorLostFailure", log), log[-5000:]
    assert lake_differences(str(local_pipeline_lake), str(lake)) == []
    leftovers = [p for p in (lake / "mds").rglob("*") if "_attempts" in p.parts or p.name.startswith(".")]
    assert leftovers == []
    if not MODEL_ARGS:
        return
    # the learned quality model was trained and applied on the cluster (its table, scores and Pareto selection are
    # among what lake_differences compared), and selected something
    from deltalake import DeltaTable

    quality = DeltaTable(str(lake / "tables" / "quality")).to_pyarrow_table(columns=["quality_model_score",
                                                                                    "drop_reasons"]).to_pylist()
    assert (lake / "tables" / "quality_model").is_dir()
    assert any(r["quality_model_score"] is not None for r in quality)
    assert any("quality_model" in r["drop_reasons"] for r in quality)
