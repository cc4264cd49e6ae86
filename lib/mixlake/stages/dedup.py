"""Stage ``dedup``: ``documents`` → Delta ``duplicates``, ``deduped`` (same schema as ``documents``),
``dedup_counts`` (per source in/out) and ``dedup_summary`` (candidates, verification, clusters)."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.dedup.config import DedupConfig
from mixlake.dedup.dedup import deduplicate, remove_duplicates
from mixlake.delta import (
    parquet_persister,
    read_latest,
    read_table,
    replace_table,
    scratch_dir,
    table_path,
    table_rows,
    table_version,
)
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import PhaseClock, StageResult

log = logging.getLogger(__name__)


def source_priorities(cfg: MixlakeConfig, d: DedupConfig) -> dict[str, int]:
    """Keep-rule order of sources: ``dedup.source_priority``, else ``sources.<name>.priority``. A lake deduplicated
    with no source declared (no ``sources.*``, sample off) has all sources equal — said in the log."""
    if d.source_priority:
        return {name: i for i, name in enumerate(d.source_priority)}
    if not cfg.sources:
        log.info("dedup: no sources declared (sources.* empty, sample disabled): all sources have equal priority")
        return {}
    return {s.name: s.priority for s in cfg.source_list()}


def quality_scores(spark: SparkSession, cfg: MixlakeConfig) -> DataFrame | None:
    """The quality stage's ``(doc_id, quality_score)`` (the keep rule's second key) when ``quality`` is a configured
    stage; a stale quality table of an unconfigured stage is never read."""
    if "quality" not in cfg.stages:
        return None
    q = read_table(spark, cfg.lake, "quality")
    if "quality_score" not in q.columns:
        raise RuntimeError("the quality table has no quality_score column (written by an older mixlake): rerun "
                           "the quality stage")
    return q.select("doc_id", "quality_score")


COUNTS_SCHEMA = "source string, docs_in long, exact_removed long, near_removed long, docs_out long"


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    d = cfg.dedup
    source = cleaned_input(cfg, d.input_table, stage="dedup")
    docs, version = read_latest(spark, cfg.lake, source)
    tmp = scratch_dir(cfg.lake, "dedup")

    clock = PhaseClock()
    phase = clock.phase
    materialise = parquet_persister(tmp)

    def persist(df: DataFrame, name: str) -> DataFrame:  # each intermediate written closes a phase
        out = materialise(df, name)
        phase(name.rstrip("_0123456789"))
        return out

    try:
        res = deduplicate(docs, d, source_priorities(cfg, d), persist=persist, quality=quality_scores(spark, cfg))
        dup_path, out_path = table_path(cfg.lake, "duplicates"), table_path(cfg.lake, "deduped")
        replace_table(res.duplicates, dup_path)
        phase("keep_rule_and_duplicates_write")
        # everything below reads the written duplicates table: the keep rule is not computed again
        dups = spark.read.format("delta").load(dup_path)
        replace_table(remove_duplicates(docs, dups).select(*docs.columns), out_path, partition_by=["source"])
        phase("deduped_write")
        # every number below is counted on what was read or written, none derived from another: rows of the input
        # version and of the written deduped table per source (as Delta's writer counted them into the commits: no
        # query), removed members of the written duplicates table (one query). The summary is one query too; the
        # two small tables are written from the collected rows rather than by computing the aggregations again
        docs_in = table_rows(spark, table_path(cfg.lake, source), version, by="source")
        out_version = table_version(spark, out_path)
        assert out_version is not None  # written above
        docs_out = table_rows(spark, out_path, out_version, by="source")
        removed = {r.source: r for r in dups.filter(~F.col("is_representative")).groupBy("source").agg(
            F.sum(F.when(F.col("kind") == "exact", 1).otherwise(0)).cast("long").alias("exact_removed"),
            F.sum(F.when(F.col("kind") == "near", 1).otherwise(0)).cast("long").alias("near_removed")).collect()}
        rows = [Row(source=s, docs_in=docs_in.get(s, 0),
                    exact_removed=removed[s].exact_removed if s in removed else 0,
                    near_removed=removed[s].near_removed if s in removed else 0, docs_out=docs_out.get(s, 0))
                for s in sorted(set(docs_in) | set(docs_out) | set(removed))]
        summary, duplicated_nodes = _summary(res, dups, d)
        replace_table(spark.createDataFrame(rows, COUNTS_SCHEMA), table_path(cfg.lake, "dedup_counts"))
        replace_table(spark.createDataFrame([summary]), table_path(cfg.lake, "dedup_summary"))
        phase("counts_and_summary")
    finally:
        storage.rmtree(tmp, cfg.s3)
    if duplicated_nodes:
        raise AssertionError("dedup: a document sits in more than one cluster of the duplicates table")
    out = StageResult("dedup", outputs={"duplicates": table_version(spark, dup_path),
                                        "deduped": out_version})
    out.records_in = sum(r.docs_in for r in rows)
    out.records_out = sum(r.docs_out for r in rows)
    out.dropped = sum(r.exact_removed + r.near_removed for r in rows)
    out.details = {"per_source": {r.source: r.asDict() for r in rows}, **summary, "phases": clock.pairs()}
    for r in rows:
        log.info("dedup %s: in=%d exact_removed=%d near_removed=%d out=%d", r.source, r.docs_in, r.exact_removed,
                 r.near_removed, r.docs_out)
    log.info("dedup: %s", summary)
    log.info("dedup: seconds per phase %s", clock.seconds)
    out.check()
    return out


def _summary(res: Any, duplicates: DataFrame, d: DedupConfig) -> tuple[dict[str, Any], int]:
    """The ``dedup_summary`` row — candidates by scheme and verdict, documents below ``min_shingles``, clusters and
    the largest one — and the number of documents the duplicates table puts in more than one cluster (must be 0):
    four one-row aggregations computed by one query."""
    b, r = d.band_rows()
    c = res.candidates.agg(F.count(F.lit(1)).alias("n"),
                           F.sum(F.when(F.col("verified"), 1).otherwise(0)).alias("ok"),
                           *(F.sum(F.when(F.col("scheme") == k, 1).otherwise(0)).alias(k)
                             for k in ("all_pairs", "star", "reroot")),
                           F.sum(F.when((F.col("scheme") == "reroot") & F.col("verified"), 1).otherwise(0))
                           .alias("reroot_ok"))
    sig = res.signatures.agg(F.sum(F.when(F.col("n_shingles") < d.min_shingles, 1).otherwise(0)).alias("short"),
                             F.count(F.lit(1)).alias("documents"))
    cl = (duplicates.filter("is_representative")
          .agg(F.count(F.lit(1)).alias("clusters"), F.max("cluster_size").alias("largest")))
    multi = (duplicates.groupBy("doc_id").agg(F.count(F.lit(1)).alias("k")).filter("k > 1")
             .agg(F.count(F.lit(1)).alias("multi")))
    row = c.crossJoin(sig).crossJoin(cl).crossJoin(multi).first()
    summary = {"bands": b, "rows": r, "threshold": d.threshold, "verify": d.verify, "scope": d.scope,
               "documents": int(row.documents or 0), "below_min_shingles": int(row.short or 0),
               "candidates": int(row.n or 0), "verified": int(row.ok or 0),
               "rejected": int((row.n or 0) - (row.ok or 0)),
               "candidates_all_pairs": int(row.all_pairs or 0), "candidates_star": int(row.star or 0),
               "candidates_reroot": int(row.reroot or 0), "verified_reroot": int(row.reroot_ok or 0),
               "bucket_all_pairs_max": d.bucket_all_pairs_max, "reroot_rounds": d.reroot_rounds,
               "components_rounds": res.components_rounds,
               "clusters": int(row.clusters or 0), "largest_cluster": int(row.largest or 0)}
    return summary, int(row.multi or 0)
