"""The ``mixlake`` console command as a user gets it: the wheel installed (``pip install``), run from a directory
outside the checkout, on the built-in sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_env

pytestmark = pytest.mark.slow


def test_mixlake_run_from_installed_wheel(tmp_path: Path) -> None:
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)], check=True,
                   timeout=300)
    (whl,) = dist.glob("mixlake-*.whl")
    # dependencies are the project venv's; mixlake itself (code + Hydra configs) only from the wheel
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(whl)],
                   check=True, timeout=300)
    command = site / "bin" / "mixlake"
    assert command.exists()
    env = {**run_env(), "PYTHONPATH": str(site)}
    p = subprocess.run([str(command), "stages"], capture_output=True, text=True, env=env, cwd=work, timeout=120)
    assert p.returncode == 0 and "write_mds" in p.stdout
    lake = work / "lake"
    p = subprocess.run([str(command), "run", f"lake={lake}", "sample.scale=0.05", "sample.seed=5"],
                       capture_output=True, text=True, env=env, cwd=work, timeout=1200)
    assert p.returncode == 0, p.stderr[-4000:]
    assert f"from {site}/mixlake" in p.stderr  # the installed package ran, not the checkout
    for stage in ("ingest", "quality", "dedup", "write_mds", "verify_mds", "report"):
        assert f"[mixlake] {stage}" in p.stdout, stage
    streams = [d for d in (lake / "mds").iterdir() if (d / "index.json").exists()]
    assert streams and all(json.loads((d / "index.json").read_text())["shards"] for d in streams)
    assert (lake / "report" / "index.html").exists()
    assert not os.path.exists(work / "outputs")  # Hydra wrote nothing into the CWD
