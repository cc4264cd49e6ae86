"""One pipeline: runs table, resumability, crash recovery, secrets masked, report, notebook."""

import base64
import io
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, compose, run_env
from mixlake.delta import table_path
from mixlake.pipeline import StageFailed, run_pipeline

STAGES = "stages=[ingest,quality,dedup,spans,tokens,mix,report]"
SECRET = "SUPERSECRET-abc123"


def _cfg(lake, sample_dir, *extra):
    return compose(f"lake={lake}", f"sample.dir={sample_dir}", "sample.scale=0.1", "sample.seed=3", STAGES,
                   f"storage.s3.secret_key={SECRET}", f"mds.remote=s3://AKIAXXX:{SECRET}@bucket/x", *extra)


def _runs(spark, lake):
    return spark.read.format("delta").load(table_path(str(lake), "runs"))


def _last_statuses(spark, lake):
    rows = _runs(spark, lake).collect()
    last_run = max(r.run_id for r in rows)
    return {r.stage: r.status for r in rows if r.run_id == last_run}


def _versions(spark, lake, names):
    from mixlake.delta import table_version

    return {n: table_version(spark, table_path(str(lake), n)) for n in names}


@pytest.fixture(scope="module")
def piped(spark, tmp_path_factory):
    lake = tmp_path_factory.mktemp("plake")
    sample_dir = tmp_path_factory.mktemp("psample")
    run_pipeline(spark, _cfg(lake, sample_dir))
    return lake, sample_dir


TABLES = ["documents", "quality", "deduped", "documents_clean", "token_counts", "mixture"]


def test_rerun_skips_and_changed_middle_stage_reruns(spark, piped):
    lake, sample_dir = piped
    before = _versions(spark, lake, TABLES)
    run_pipeline(spark, _cfg(lake, sample_dir))
    st = _last_statuses(spark, lake)
    assert all(st[s] == "skipped" for s in ("ingest", "quality", "dedup", "spans", "tokens", "mix")), st
    assert st["report"] == "succeeded"
    assert _versions(spark, lake, TABLES) == before
    run_pipeline(spark, _cfg(lake, sample_dir, "spans.min_words=30"))
    st = _last_statuses(spark, lake)
    assert [st[s] for s in ("ingest", "quality", "dedup")] == ["skipped"] * 3, st
    assert [st[s] for s in ("spans", "tokens", "mix")] == ["succeeded"] * 3, st
    after = _versions(spark, lake, TABLES)
    assert after["deduped"] == before["deduped"] and after["documents_clean"] == before["documents_clean"] + 1


def test_crash_then_rerun_completes_without_duplicates(spark, piped):
    lake, sample_dir = piped
    with pytest.raises(StageFailed, match="dedup"):
        run_pipeline(spark, _cfg(lake, sample_dir, "force=true", "debug.fail_stage=dedup"))
    failed = [r for r in _runs(spark, lake).collect() if r.status == "failed"]
    assert failed and failed[-1].stage == "dedup" and "injected failure" in failed[-1].error
    run_pipeline(spark, _cfg(lake, sample_dir))
    st = _last_statuses(spark, lake)
    assert st["ingest"] == "skipped" and st["dedup"] == "succeeded", st
    for name in ("documents", "deduped", "documents_clean"):
        df = spark.read.format("delta").load(table_path(str(lake), name))
        assert df.count() == df.select("doc_id").distinct().count(), name


def test_table_version_agrees_with_delta_history(spark, piped):
    """The bookkeeping reads versions from ``_delta_log`` file names; Delta's own history must say the same."""
    from mixlake.delta import table_version

    lake, _ = piped
    names = sorted(os.listdir(os.path.join(str(lake), "tables")))
    assert {"documents", "runs", "deduped"} <= set(names)
    for name in names:
        path = table_path(str(lake), name)
        history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg({"version": "max"}).first()[0]
        assert table_version(spark, path) == history, name
    assert table_version(spark, table_path(str(lake), "no_such_table")) is None


def test_runs_table_lineage_and_no_secrets(spark, piped):
    lake, _ = piped
    rows = _runs(spark, lake).filter("status = 'succeeded'").collect()
    dedup = next(r for r in rows if r.stage == "dedup")
    assert dedup.input_versions and "quality_kept" in dedup.input_versions and "deduped" in dedup.output_versions
    deduped = spark.read.format("delta").load(f"{lake}/tables/deduped").count()
    removed = spark.read.format("delta").load(f"{lake}/tables/duplicates").filter("NOT is_representative").count()
    kept = spark.read.format("delta").load(f"{lake}/tables/quality_kept").count()
    assert (dedup.records_in, dedup.records_out, dedup.dropped) == (kept, deduped, removed)
    assert all(SECRET not in (r.config or "") and SECRET not in (r.details or "") for r in _runs(spark, lake).collect())
    for root, _, files in os.walk(os.path.join(str(lake), "report")):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert SECRET.encode() not in fh.read(), f


def test_report_renders_with_every_plot(piped, tmp_path):
    import matplotlib.image as mpimg

    lake, _ = piped
    page = os.path.join(str(lake), "report", "index.html")
    html = open(page).read()  # noqa: SIM115
    for title in ("Funnel per source", "Quarantine", "Quality rules", "Duplicate clusters", "LSH S-curve",
                  "Top repeated spans", "Mixture plan", "Run times"):
        assert f"<h2>{title}</h2>" in html, title
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) >= 6
    for b64 in images:
        img = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert img.shape[0] > 100 and img.shape[1] > 100 and float(img.std()) > 0.01  # decoded, not blank
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        shot = tmp_path / "report.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        f"--user-data-dir={tmp_path / 'chrome'}", f"--screenshot={shot}", "--window-size=1200,3000",
                        f"file://{page}"], timeout=120, check=True, capture_output=True)
        img = mpimg.imread(str(shot))
        assert float(img.std()) > 0.01


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(piped):
    import nbformat
    from nbclient import NotebookClient

    lake, _ = piped
    nb = nbformat.read(str(REPO / "notebooks" / "explore.ipynb"), as_version=4)
    env = run_env()
    env["MIXLAKE_LAKE"] = str(lake)
    os.environ["MIXLAKE_LAKE"] = str(lake)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "version" in outputs and str(lake) in outputs


def test_session_starts_beside_the_sample_and_errors_are_not_lost():
    """The command's session is built in a thread while the pipeline makes the sample: both run at once (the build
    waits for the work to signal it, which could not happen if they ran one after the other), and an error raised
    by either reaches the caller."""
    import threading

    from pyspark.sql import SparkSession

    from mixlake.pipeline import _started_while

    class FakeSession:  # stands in for a SparkSession: _started_while makes what it built the active session
        _jvm = type("J", (), {"SparkSession": type("S", (), {"setActiveSession": staticmethod(lambda s: None)})})
        _jsparkSession = None

    work_running = threading.Event()
    seen = {}

    def build():
        seen["overlapped"] = work_running.wait(timeout=30)
        seen["thread"] = threading.current_thread().name
        return FakeSession()

    def failing(message):
        def run():
            raise RuntimeError(message)
        return run

    active = SparkSession._activeSession
    try:
        assert isinstance(_started_while(build, work_running.set), FakeSession)
        assert seen == {"overlapped": True, "thread": "mixlake-session-start"}
        with pytest.raises(RuntimeError, match="no JVM"):
            _started_while(failing("no JVM"), lambda: None)
        built = []
        with pytest.raises(RuntimeError, match="sample"):  # the work's error, once the session thread has finished
            _started_while(lambda: built.append(1) or FakeSession(), failing("sample"))
        assert built == [1]
    finally:
        SparkSession._activeSession = active
