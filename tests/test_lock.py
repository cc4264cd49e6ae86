"""Two pipelines on one lake (issue 14): the second fails fast naming the first; a dead holder never blocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO, compose, run_env
from mixlake.lock import LOCK_NAME, LakeLease, LakeLocked, LockConfig
from mixlake.pipeline import StageFailed, run_pipeline


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lease_excludes_a_second_run_and_is_released(tmp_path):
    lake = str(tmp_path / "lake")
    with LakeLease(lake, "run-a", LockConfig()):
        held = json.loads((tmp_path / "lake" / LOCK_NAME).read_text())
        assert held["run_id"] == "run-a" and held["pid"] == os.getpid()
        with pytest.raises(LakeLocked, match=r"run-a .*pid " + str(os.getpid())):
            LakeLease(lake, "run-b", LockConfig()).acquire()
    assert not (tmp_path / "lake" / LOCK_NAME).exists()
    with LakeLease(lake, "run-b", LockConfig()):
        assert json.loads((tmp_path / "lake" / LOCK_NAME).read_text())["run_id"] == "run-b"


@pytest.mark.parametrize("holder,taken", [
    ({"host": socket.gethostname(), "pid": "dead", "expires_at": "future"}, True),  # crashed here
    ({"host": "elsewhere", "pid": 1, "expires_at": "past"}, True),  # stopped renewing
    ({"host": "elsewhere", "pid": 1, "expires_at": "future"}, False),  # alive on another host
    ({"host": socket.gethostname(), "pid": "me", "expires_at": "future"}, False),  # alive here
])
def test_stale_leases_are_taken_over_live_ones_are_not(tmp_path, holder, taken):
    (tmp_path / "lake").mkdir()
    body = {"run_id": "old", "host": holder["host"],
            "pid": _dead_pid() if holder["pid"] == "dead" else os.getpid() if holder["pid"] == "me" else 1,
            "expires_at": time.time() + (600 if holder["expires_at"] == "future" else -1)}
    (tmp_path / "lake" / LOCK_NAME).write_text(json.dumps(body))
    lease = LakeLease(str(tmp_path / "lake"), "new", LockConfig())
    if taken:
        with lease:
            assert json.loads((tmp_path / "lake" / LOCK_NAME).read_text())["run_id"] == "new"
    else:
        with pytest.raises(LakeLocked, match="old"):
            lease.acquire()
        assert json.loads((tmp_path / "lake" / LOCK_NAME).read_text())["run_id"] == "old"


def test_lease_is_renewed_while_the_run_lives(tmp_path):
    with LakeLease(str(tmp_path), "r", LockConfig(lease_seconds=4)):
        first = json.loads((tmp_path / LOCK_NAME).read_text())["expires_at"]
        time.sleep(2.5)
        assert json.loads((tmp_path / LOCK_NAME).read_text())["expires_at"] > first


def test_failed_run_releases_the_lease(spark, tmp_path):
    cfg = compose(f"lake={tmp_path / 'lake'}", f"sample.dir={tmp_path / 's'}", "sample.scale=0.05",
                  "stages=[ingest]", "debug.fail_stage=ingest")
    with pytest.raises(StageFailed):
        run_pipeline(spark, cfg)
    assert not (tmp_path / "lake" / LOCK_NAME).exists()


@pytest.mark.slow
def test_second_pipeline_on_a_running_lake_fails_fast(spark, tmp_path):
    lake = tmp_path / "lake"
    args = [f"lake={lake}", f"sample.dir={tmp_path / 's'}", "sample.scale=0.05", "stages=[ingest]"]
    first = subprocess.Popen([sys.executable, str(REPO / "jobs" / "pipeline.py"), *args], env=run_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        deadline = time.time() + 300
        while not (lake / LOCK_NAME).exists():
            assert first.poll() is None and time.time() < deadline, "the first run ended before taking the lease"
            time.sleep(0.2)
        holder = json.loads((lake / LOCK_NAME).read_text())
        t0 = time.time()
        with pytest.raises(LakeLocked, match=holder["run_id"]):
            run_pipeline(spark, compose(*args))
        assert time.time() - t0 < 10  # fails fast, before any stage
        assert (lake / LOCK_NAME).exists()  # the loser did not remove the winner's lease
        out, _ = first.communicate(timeout=600)
        assert first.returncode == 0, out[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert not (lake / LOCK_NAME).exists()
    # and afterwards the lake is free again
    assert run_pipeline(spark, compose(*args))[-1].details.get("skipped")
