"""Stage ``quality``: signals, language and keep decisions per document → Delta ``quality`` (signals, ``lang``,
``lang_score``, ``keep``, ``drop_reasons``), ``quality_kept`` (kept documents, ``documents`` schema) and
``quality_counts`` (per source and rule: documents dropped, with the smallest-``doc_id`` example)."""

from __future__ import annotations

import logging
from dataclasses import replace

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mixlake.config import MixlakeConfig
from mixlake.delta import read_table, replace_table, table_path, table_version
from mixlake.quality.rules import QualityConfig, apply_rules
from mixlake.quality.signals import quality_signals
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def stage_config(cfg: MixlakeConfig) -> QualityConfig:
    """``quality`` with ``apply_to`` filled from ``sources.<name>.quality`` when it is null."""
    qc = cfg.quality
    if qc.apply_to is None:
        if not cfg.sources:
            log.info("quality: no sources declared: the rules apply to every source in the documents table")
            return qc
        if not all(s.quality for s in cfg.sources.values()):
            qc = replace(qc, apply_to=[s.name for s in cfg.source_list() if s.quality])
    return qc


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    qc = stage_config(cfg)
    docs = read_table(spark, cfg.lake, "documents")
    tagged = apply_rules(quality_signals(docs, qc.langid), qc)
    qpath = table_path(cfg.lake, "quality")
    replace_table(tagged, qpath, partition_by=["source"])
    q = spark.read.format("delta").load(qpath)
    kept = docs.join(q.filter("keep").select("doc_id"), "doc_id", "left_semi")
    replace_table(kept, table_path(cfg.lake, "quality_kept"), partition_by=["source"])
    exploded = q.select("source", "doc_id", F.explode("drop_reasons").alias("rule"))
    counts = (exploded.groupBy("source", "rule")
              .agg(F.count(F.lit(1)).alias("dropped"), F.min("doc_id").alias("example_doc_id"))
              .orderBy("source", "rule"))
    replace_table(counts, table_path(cfg.lake, "quality_counts"))
    # counted on the tables as written: documents read, quality rows, kept rows, dropped rows — none derived
    kept_t = spark.read.format("delta").load(table_path(cfg.lake, "quality_kept"))
    n_in = docs.count()
    tagged_n = q.groupBy("source").agg(F.count(F.lit(1)).alias("n"),
                                       F.sum((~F.col("keep")).cast("int")).alias("dropped"))
    per_source = (tagged_n.join(kept_t.groupBy("source").agg(F.count(F.lit(1)).alias("kept")), "source", "left")
                  .fillna(0, ["kept", "dropped"]).orderBy("source").collect())
    rule_counts = spark.read.format("delta").load(table_path(cfg.lake, "quality_counts")).collect()
    res = StageResult("quality", records_in=n_in, outputs={"quality": table_version(spark, qpath)})
    for r in per_source:
        res.records_out += int(r.kept)
        res.dropped += int(r.dropped)
        log.info("quality %s: in=%d kept=%d dropped=%d", r.source, r.n, r.kept, r.dropped)
    if sum(int(r.n) for r in per_source) != n_in:
        raise AssertionError(f"quality: {n_in} documents read but {sum(int(r.n) for r in per_source)} quality rows")
    res.details = {"per_rule": [r.asDict() for r in rule_counts],
                   "per_source": {r.source: {"in": int(r.n), "kept": int(r.kept), "dropped": int(r.dropped)}
                                  for r in per_source}}
    for r in rule_counts:
        log.info("quality rule %s/%s dropped %d (e.g. %s)", r.source, r.rule, r.dropped, r.example_doc_id)
    res.check()
    return res
