"""One shared local[2] SparkSession per test run, plus a small sample lake ingested once."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
# Small but with every injected case present; tests derive expectations from the ground-truth file.
SAMPLE_ARGS = ["sample.scale=0.25", "sample.seed=7"]
# MIXLAKE_TEST_QUALITY_MODEL=1 (`make test-cross-model`): the whole-pipeline runs compared across environments
# (local[2], standalone cluster, executor kill, S3) also train and apply the learned quality model, so its scores and
# Pareto selection are compared across them (issue 16). Off in `make test`: it adds ~7 minutes to those four runs.
# (The model's selection leaves fewer web tokens than the sample's demo budget needs at 4 epochs: a smaller budget.)
MODEL_ARGS = (["quality_model.enabled=true", "budget.tokens=800000"]
              if os.environ.get("MIXLAKE_TEST_QUALITY_MODEL") == "1" else [])
PIPELINE_ARGS = [*SAMPLE_ARGS, *MODEL_ARGS]
BUCKET = "mixlake-test"  # of the moto S3 server (s3_server)
ACCESS_KEY = "mixlake-test-access"


def realdata(sub: str) -> Path:
    p = REALDATA / sub
    if not p.exists():
        pytest.skip(f"real third-party data not available: {p} (see ../shared/realdata/README.md)")
    return p


@pytest.fixture(scope="session")
def spark():
    from mixlake.config import SparkConfig
    from mixlake.spark import get_spark

    s = get_spark(SparkConfig(conf={
        "spark.sql.shuffle.partitions": "4",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }))
    yield s
    s.stop()


def compose(*overrides: str):
    from mixlake.config import compose as compose_config

    return compose_config(list(overrides))


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    from mixlake.sample.generate import ensure_sample

    d = tmp_path_factory.mktemp("sample")
    ensure_sample(compose(*SAMPLE_ARGS, f"sample.dir={d}").sample)
    return d


@pytest.fixture(scope="session")
def ground_truth(sample_dir) -> dict:
    return json.loads((sample_dir / "ground_truth.json").read_text())


@pytest.fixture(scope="session")
def sample_lake(spark, sample_dir, tmp_path_factory):
    """(cfg, StageResult) of one ingest of the sample into a fresh lake."""
    from mixlake.stages import ingest

    lake = tmp_path_factory.mktemp("lake")
    cfg = compose(*SAMPLE_ARGS, f"sample.dir={sample_dir}", f"lake={lake}")
    return cfg, ingest.run(spark, cfg)


def sample_lake_cfg(base, stages: str, *extra: str):
    """The shared sample lake's config with another ``stages`` list (which decides each stage's input table)."""
    return compose(*SAMPLE_ARGS, f"sample.dir={base.sample.dir}", f"lake={base.lake}", f"stages={stages}", *extra)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """mixlake's wheel (code + Hydra configs inside), built once per test run, as ``make dist`` builds it."""
    d = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(d), str(REPO)], check=True,
                   capture_output=True, timeout=300)
    (whl,) = d.glob("mixlake-*.whl")
    return whl


@dataclass(frozen=True)
class CommandRun:
    """One run of the installed ``mixlake`` console command."""

    site: Path  # where the wheel was pip-installed (its own directory; dependencies are the venv's)
    work: Path  # the CWD, outside the checkout
    lake: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def local_pipeline_run(tmp_path_factory, sample_dir, wheel) -> CommandRun:
    """The whole sample pipeline run once in local[2] mode, as a user runs it: ``mixlake run`` from the installed
    wheel, in a directory outside the checkout. It is the reference the standalone-cluster and S3 runs must
    reproduce, and what ``test_command`` checks the installed command by (one pipeline run serves both)."""
    root = tmp_path_factory.mktemp("local")
    site, work = root / "site", root / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    env = {**run_env(), "PYTHONPATH": str(site)}
    lake = work / "lake"
    t0 = time.time()
    p = subprocess.run([str(site / "bin" / "mixlake"), "run", f"lake={lake}", "spark.master=local[2]",
                        *PIPELINE_ARGS, f"sample.dir={sample_dir}"], capture_output=True, text=True, timeout=1200,
                       env=env, cwd=work)
    assert p.returncode == 0, p.stderr[-4000:]
    print(f"local[2] pipeline (installed mixlake command): {time.time() - t0:.1f}s")
    return CommandRun(site, work, lake, p.stdout, p.stderr)


@pytest.fixture(scope="session")
def local_pipeline_lake(local_pipeline_run) -> Path:
    return local_pipeline_run.lake


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MIXLAKE_IVY", str(REPO / ".ivy"))
    return env


sys.path.insert(0, str(REPO / "bench"))  # tests reuse bench helpers (e.g. bench_langid.labelled_pages)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """(endpoint, boto3 client, secret key) of a moto S3 server, stopped by PID."""
    import boto3

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        secret = "sk-" + secrets.token_hex(16)
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=secret, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client, secret
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
