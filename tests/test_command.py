"""The ``mixlake`` console command as a user gets it: the wheel installed (``pip install``), run from a directory
outside the checkout, on the built-in sample. The run is the session's ``local_pipeline_run`` (conftest), which is
also the reference the standalone-cluster and S3 runs must reproduce."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import run_env

pytestmark = pytest.mark.slow


def test_mixlake_run_from_installed_wheel(local_pipeline_run) -> None:
    run = local_pipeline_run
    command = run.site / "bin" / "mixlake"
    assert command.exists()
    env = {**run_env(), "PYTHONPATH": str(run.site)}
    p = subprocess.run([str(command), "stages"], capture_output=True, text=True, env=env, cwd=run.work, timeout=120)
    assert p.returncode == 0 and "write_mds" in p.stdout
    assert f"from {run.site}/mixlake" in run.stderr  # the installed package ran, not the checkout
    for stage in ("ingest", "quality", "dedup", "write_mds", "verify_mds", "report"):
        assert f"[mixlake] {stage}" in run.stdout, stage
    streams = [d for d in (run.lake / "mds").iterdir() if (d / "index.json").exists()]
    assert streams and all(json.loads((d / "index.json").read_text())["shards"] for d in streams)
    assert (run.lake / "report" / "index.html").exists()
    assert not os.path.exists(run.work / "outputs")  # Hydra wrote nothing into the CWD
