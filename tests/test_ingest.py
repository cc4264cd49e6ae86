"""Ingest on real Spark and real Delta tables."""

import json
import subprocess
from collections import Counter

import pytest
from pyspark.sql import functions as F

from conftest import REPO, SAMPLE_ARGS, compose, realdata, run_env
from mixlake.delta import table_path
from mixlake.ingest.ingest import DOCUMENT_COLUMNS
from mixlake.stages import ingest


def _table(spark, lake, name):
    return spark.read.format("delta").load(table_path(str(lake), name))


def _history(spark, lake, name):
    return spark.sql(f"DESCRIBE HISTORY delta.`{table_path(str(lake), name)}`").collect()


def test_schema_and_counts(spark, sample_lake, ground_truth):
    cfg, res = sample_lake
    docs = _table(spark, cfg.lake, "documents")
    assert docs.columns == DOCUMENT_COLUMNS
    types = dict(docs.dtypes)
    assert types["doc_id"] == "string" and types["n_chars"] == "int" and types["offset"] == "bigint"
    per_source = {r.source: r["count"] for r in docs.groupBy("source").count().collect()}
    for source in ("wiki", "code", "books"):
        assert per_source[source] == ground_truth["documents"][source], source
    # crawl: the good pages plus the whole records before the cut in crawl-truncated.warc.gz (4 pages)
    assert ground_truth["documents"]["crawl"] < per_source["crawl"] < ground_truth["documents"]["crawl"] + 4
    # web: the good records of the main shards plus what survived before the truncation point
    assert ground_truth["documents"]["web"] < per_source["web"] < ground_truth["documents"]["web"] + 40
    assert docs.select("doc_id").distinct().count() == docs.count()
    assert docs.filter(F.col("n_chars") != F.length("text")).count() == 0
    q = Counter((r.source, r.reason.split(":")[0]) for r in _table(spark, cfg.lake, "quarantine").collect())
    expected_web = Counter(r["reason"] for r in ground_truth["bad_records"] if r["file"].startswith("web/part-0"))
    for reason, n in expected_web.items():
        assert q[("web", reason)] == n, reason
    assert q[("web", "corrupt_compression")] == 1
    assert q[("crawl", "warc_truncated_tail")] + q[("crawl", "warc_truncated_record")] == 1
    assert_ingest_counts_match_tables(spark, cfg.lake, res)


def assert_ingest_counts_match_tables(spark, lake, res) -> None:
    """The stage's numbers against the tables it wrote (not against each other)."""
    files = _table(spark, lake, "ingest_files").collect()
    assert res.records_in == sum(r.records_read for r in files)
    assert res.records_out == _table(spark, lake, "documents").count()
    assert res.quarantined == _table(spark, lake, "quarantine").count()
    assert res.dropped == sum(r.skipped for r in files)
    assert res.records_in == res.records_out + res.dropped + res.quarantined


def test_accounting_per_file(spark, sample_lake):
    cfg, _ = sample_lake
    acc = {(r.source, r.file): r for r in _table(spark, cfg.lake, "ingest_files").collect()}
    docs = Counter((r.source, r.file) for r in _table(spark, cfg.lake, "documents").select("source", "file").collect())
    quar = Counter((r.source, r.file) for r in _table(spark, cfg.lake, "quarantine").select("source", "file").collect())
    assert acc
    for key, r in acc.items():
        assert r.records_read == r.documents + r.quarantined + r.skipped, key
        assert r.documents == docs[key] and r.quarantined == quar[key], key
        assert r.skipped == sum(r.skip_reasons.values())
    crawl = [r for (s, _), r in acc.items() if s == "crawl"]
    assert sum(r.skip_reasons.get("warc_request_record", 0) for r in crawl) > 0


def test_determinism_and_idempotency(spark, sample_lake, sample_dir, tmp_path):
    cfg, _ = sample_lake
    # one Spark task per file here, files grouped into a few tasks in the shared lake: the same tables
    other = compose(*SAMPLE_ARGS, f"sample.dir={sample_dir}", f"lake={tmp_path}", "ingest.task_bytes=1")
    ingest.run(spark, other)
    a = _table(spark, cfg.lake, "documents")
    b = _table(spark, tmp_path, "documents")
    assert a.count() == b.count()
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
    qa, qb = _table(spark, cfg.lake, "quarantine"), _table(spark, tmp_path, "quarantine")
    assert qa.drop("file").exceptAll(qb.drop("file")).count() == 0
    # rerun into the same lake: replaced, not doubled; one commit per run
    n_before = b.count()
    ingest.run(spark, other)
    assert _table(spark, tmp_path, "documents").count() == n_before
    for name in ("documents", "quarantine", "ingest_files"):
        assert len(_history(spark, tmp_path, name)) == 2, name


@pytest.mark.parametrize("sizes", [[1] * 480, [10, 1, 1, 1, 500, 3, 3, 3, 80], [7], [0, 0, 0], list(range(1, 60))])
@pytest.mark.parametrize("task_bytes,min_groups,max_groups", [(64, 4, 4096), (1, 4, 4096), (10**9, 1, 8), (5, 2, 3)])
def test_read_tasks_grouped_in_order_and_balanced(sizes, task_bytes, min_groups, max_groups):
    from mixlake.ingest.ingest import ReadTask, group_read_tasks

    tasks = [ReadTask(i, "s", f"f{i}", f"f{i}", None, n) for i, n in enumerate(sizes)]
    groups = group_read_tasks(tasks, task_bytes, min_groups, max_groups)
    assert [t for g in groups for t in g] == tasks and all(groups)  # every task once, in order, no empty group
    total = sum(max(n, 1) for n in sizes)
    expected = min(len(tasks), max_groups, max(min_groups, -(-total // task_bytes)))
    assert len(groups) <= expected and (len(groups) == expected or len(set(sizes)) > 1)  # equal sizes: all of them
    biggest = max(max(n, 1) for n in sizes)
    assert max(sum(max(t.size, 1) for t in g) for g in groups) <= total / expected + biggest  # no group far over
    assert group_read_tasks([], task_bytes, min_groups, max_groups) == []


def test_rerun_with_one_source_removes_or_keeps_the_other(spark, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "1.jsonl").write_text("".join(json.dumps({"id": i, "text": f"a{i}"}) + "\n" for i in range(5)))
    (tmp_path / "b" / "1.jsonl").write_text("".join(json.dumps({"id": i, "text": f"b{i}"}) + "\n" for i in range(3)))
    lake = tmp_path / "lake"
    both = ["sample.enabled=false", f"lake={lake}", f"+sources.a.path={tmp_path}/a/*.jsonl", "+sources.a.format=jsonl",
            f"+sources.b.path={tmp_path}/b/*.jsonl", "+sources.b.format=jsonl"]
    ingest.run(spark, compose(*both))
    (tmp_path / "a" / "1.jsonl").write_text(json.dumps({"id": 0, "text": "a-new"}) + "\n")
    only_a = ["sample.enabled=false", f"lake={lake}", f"+sources.a.path={tmp_path}/a/*.jsonl",
              "+sources.a.format=jsonl"]
    # kept on request: only a's rows are replaced
    res = ingest.run(spark, compose(*only_a, "ingest.keep_removed_sources=true"))
    rows = sorted((r.source, r.text) for r in _table(spark, lake, "documents").collect())
    assert rows == [("a", "a-new"), ("b", "b0"), ("b", "b1"), ("b", "b2")]
    assert res.details["kept_unconfigured_sources"] == ["b"]
    # by default a source dropped from the config stops flowing downstream: its rows leave every ingest table
    res = ingest.run(spark, compose(*only_a))
    assert res.details["removed_sources"] == ["b"]
    for name in ("documents", "quarantine", "ingest_files"):
        assert {r.source for r in _table(spark, lake, name).select("source").collect()} <= {"a"}, name
    assert sorted(r.text for r in _table(spark, lake, "documents").collect()) == ["a-new"]


def test_duplicate_source_ids_keep_first(spark, tmp_path):
    (tmp_path / "d.jsonl").write_text(
        '{"id": 1, "text": "first"}\n{"id": 1, "text": "second"}\n{"id": 2, "text": "x"}\n')
    lake = tmp_path / "lake"
    res = ingest.run(spark, compose("sample.enabled=false", f"lake={lake}", f"+sources.d.path={tmp_path}/d.jsonl",
                                    "+sources.d.format=jsonl"))
    assert sorted(r.text for r in _table(spark, lake, "documents").collect()) == ["first", "x"]
    (q,) = _table(spark, lake, "quarantine").collect()
    assert q.reason == "duplicate_source_id" and q.raw == b"second"
    assert (res.records_in, res.records_out, res.quarantined) == (3, 2, 1)


def test_missing_path_fails_fast(spark, tmp_path):
    from mixlake.config import ConfigError

    with pytest.raises(ConfigError, match="no files match"):
        ingest.run(spark, compose("sample.enabled=false", f"lake={tmp_path}", f"+sources.x.path={tmp_path}/nope/*",
                                  "+sources.x.format=jsonl"))


def test_deltalake_package_reads_tables(sample_lake):
    from deltalake import DeltaTable

    cfg, res = sample_lake
    docs = DeltaTable(table_path(cfg.lake, "documents")).to_pyarrow_table()
    quar = DeltaTable(table_path(cfg.lake, "quarantine")).to_pyarrow_table()
    assert docs.num_rows == res.records_out and quar.num_rows == res.quarantined


def test_real_fortunes_text(spark, tmp_path):
    d = realdata("text/fortunes")
    files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.isupper() and "." not in p.name)
    expected = 0
    for p in files:
        blocks = p.read_bytes().split(b"\n%\n")
        expected += sum(1 for b in blocks if b.strip(b"%\n \t"))
    lake = tmp_path / "lake"
    res = ingest.run(spark, compose("sample.enabled=false", f"lake={lake}", f"+sources.fortunes.path='{d}/[a-z]*'",
                                    "+sources.fortunes.format=text", "+sources.fortunes.separator=%"))
    assert res.records_out > 10_000
    assert abs(res.records_out + res.quarantined - expected) <= len(files)  # edge blocks at file starts/ends


def test_real_warc_fixtures_ingested(spark, tmp_path):
    d = realdata("warc")
    lake = tmp_path / "lake"
    res = ingest.run(spark, compose(
        "sample.enabled=false", f"lake={lake}",
        f"+sources.cc.path={d}/dolma/*.warc.gz", "+sources.cc.format=warc",
        f"+sources.bad.path={d}/warcio/example*.warc*", "+sources.bad.format=warc",
        f"+sources.wet.path={d}/commoncrawl-whirlwind/*.wet.gz", "+sources.wet.format=wet"))
    docs = _table(spark, lake, "documents")
    per = {r.source: r["count"] for r in docs.groupBy("source").count().collect()}
    assert per["cc"] == 37 and per["wet"] == 1 and per["bad"] >= 3
    q = _table(spark, lake, "quarantine")
    bad_files = {r.file.rsplit("/", 1)[1] for r in q.filter("source = 'bad'").collect()}
    assert {"example-trunc.warc", "example-wrong-chunks.warc.gz"} <= bad_files
    assert "example-bad.warc.gz.bad" not in bad_files  # gzipped as one stream: one CRC-checked member, read whole
    assert_ingest_counts_match_tables(spark, lake, res)


@pytest.mark.slow
def test_spark_submit_runs_the_job(tmp_path):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "text": f"doc {i}"}) + "\n" for i in range(7)))
    lake = tmp_path / "lake"
    p = subprocess.run([str(REPO / "bin" / "mixlake-submit"), "--master", "local[1]", str(REPO / "jobs" / "ingest.py"),
                        f"lake={lake}", "sample.enabled=false", f"+sources.s.path={tmp_path}/in.jsonl",
                        "+sources.s.format=jsonl"], capture_output=True, text=True, timeout=300, env=run_env(),
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "[mixlake] ingest" in p.stdout and "out=7" in p.stdout
    from deltalake import DeltaTable

    assert DeltaTable(table_path(str(lake), "documents")).to_pyarrow_table().num_rows == 7
    assert not (tmp_path / "outputs").exists()  # Hydra leaves nothing in the CWD
