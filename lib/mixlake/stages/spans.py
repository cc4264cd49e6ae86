"""Stage ``spans``: remove spans repeated across the corpus → Delta ``spans`` (every removed span: text, count,
documents, words, occurrences removed) and ``documents_clean`` (the texts after removal, ``documents`` schema plus
``removed_chars``; a document left empty is dropped and counted)."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.delta import (
    parquet_persister,
    read_latest,
    replace_table,
    row_count,
    scratch_dir,
    table_path,
    table_version,
)
from mixlake.spans.spans import (
    SpansConfig,
    cut_ranges,
    is_blank,
    removal_ranges,
    removal_stats,
    span_counts,
    span_occurrences,
    span_removals,
    spans_table,
)
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import PhaseClock, StageResult

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    sc = cfg.spans
    source = cleaned_input(cfg, sc.input_table, stage="spans")
    docs, version = read_latest(spark, cfg.lake, source)
    tmp = scratch_dir(cfg.lake, "spans")
    try:
        return _run(spark, cfg, sc, source, docs, version, tmp)
    finally:
        storage.rmtree(tmp, cfg.s3)


def _run(spark: SparkSession, cfg: MixlakeConfig, sc: SpansConfig, source: str, docs: DataFrame, version: int,
         tmp: str) -> StageResult:
    clock = PhaseClock()
    # the Python pass (sentence split, normalise, hash) runs once: its rows feed the counts and the removals
    persist = parquet_persister(tmp)
    occ = persist(span_occurrences(docs, sc), "occurrences")
    clock.phase("occurrences")
    counts = persist(span_counts(occ, sc), "counts")
    clock.phase("counts")
    replace_table(spans_table(counts, docs, sc), table_path(cfg.lake, "spans"))
    clock.phase("spans_write")
    # the ranges to cut (small: one row per document that loses a span) are persisted; the documents are cut and
    # written in one pass (never persisted: the texts are the stage's largest data)
    ranges = persist(removal_ranges(span_removals(occ, counts, sc)), "ranges")
    clock.phase("removal_ranges")
    out_path = table_path(cfg.lake, "documents_clean")
    replace_table(cut_ranges(docs, ranges).filter(~is_blank()), out_path, partition_by=["source"])
    clock.phase("documents_clean_write")
    # counted on what was read and written, none derived: rows of the input version and of the two written tables
    # (as Delta's writer counted them into the commits: no query), emptied rows and removed characters (the cut
    # computed again for the documents they can concern: those with ranges or already blank)
    n_in = row_count(spark, table_path(cfg.lake, source), version)
    stats = removal_stats(docs, ranges).first()
    n_emptied = int(stats.emptied)
    spans_path = table_path(cfg.lake, "spans")
    for r in spark.read.format("delta").load(spans_path).limit(5).collect():
        log.info("spans: %d x (%d docs, %d words): %s", r["count"], r.n_docs, r.n_words, r.text[:100])
    out_version = table_version(spark, out_path)
    assert out_version is not None  # written above
    n_out = row_count(spark, out_path, out_version)
    n_spans = row_count(spark, spans_path, table_version(spark, spans_path))
    clock.phase("counts_and_summary")
    log.info("spans: seconds per phase %s", clock.seconds)
    res = StageResult("spans", records_in=n_in, records_out=n_out, dropped=n_emptied,
                      outputs={"documents_clean": out_version},
                      details={"input_table": source, "removed_chars": int(stats.removed_chars),
                               "repeated_spans": n_spans, "dropped_reason": "empty after span removal",
                               "phases": clock.pairs()})
    res.check()
    return res
