"""Stage ``quality``: signals, language and keep decisions per document → Delta ``quality`` (signals, ``lang``,
``lang_score``, ``keep``, ``drop_reasons``), ``quality_kept`` (kept documents, ``documents`` schema) and
``quality_counts`` (per source and rule: documents dropped, with the smallest-``doc_id`` example). With
``quality_model.enabled``, GPT-3's learned classifier (:mod:`mixlake.quality.model`) adds ``quality_model_score``
and its selection (reason ``quality_model``), and the Delta table ``quality_model`` records the model and its
metrics."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.delta import read_latest, replace_table, row_count, table_path, table_rows, table_version
from mixlake.errors import ConfigError
from mixlake.quality.model import apply_selection, score, train_or_load
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


def validate(cfg: MixlakeConfig) -> None:
    qm = cfg.quality_model
    if not qm.enabled or qm.path is not None or not cfg.sources:
        return
    for key in ("positive_sources", "negative_sources"):
        missing = [s for s in getattr(qm, key) if s not in cfg.sources]
        if missing:
            raise ConfigError(f"quality_model.{key} names sources that are not configured: {missing} "
                              f"(configured: {sorted(cfg.sources)})")


def with_model(spark: SparkSession, cfg: MixlakeConfig, docs: DataFrame,
               tagged: DataFrame) -> tuple[DataFrame, dict[str, Any]]:
    """``tagged`` with the learned score and its selection folded in: ``quality_model_score``, ``keep`` also
    requiring the model's selection, ``quality_model`` in ``drop_reasons``, and ``quality_score`` = the model's
    score where there is one (what dedup's keep rule prefers)."""
    qm = cfg.quality_model
    version = table_version(spark, table_path(cfg.lake, "documents"))
    model, metrics, where = train_or_load(docs, qm, storage.join(cfg.lake, "models", "quality"), version, cfg.s3)
    targets = qm.targets()
    scores = score(model, docs.filter(F.col("source").isin(targets)).select("doc_id", "text"))
    t = apply_selection(tagged.join(scores.select("doc_id", "quality_model_score"), "doc_id", "left"), qm)
    dropped = ~F.col("quality_model_keep")
    t = (t.withColumn("drop_reasons", F.when(dropped, F.concat("drop_reasons", F.array(F.lit("quality_model"))))
                      .otherwise(F.col("drop_reasons")))
         .withColumn("keep", F.col("keep") & F.col("quality_model_keep"))
         .withColumn("quality_score", F.coalesce("quality_model_score", "quality_score"))
         .drop("quality_model_keep"))
    return t, {**metrics, "path": where, "select": qm.select, "applied_to": targets}


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    qc = stage_config(cfg)
    validate(cfg)
    docs, version = read_latest(spark, cfg.lake, "documents")
    tagged = apply_rules(quality_signals(docs, qc.langid), qc)
    model_info: dict[str, Any] | None = None
    if cfg.quality_model.enabled:
        tagged, model_info = with_model(spark, cfg, docs, tagged)
        # a model under the lake is named relative to it, so the table is the same wherever the lake lives
        where = model_info["path"]
        inside = where.startswith(cfg.lake.rstrip("/") + "/")
        stored = {**model_info, "path": storage.relative(where, cfg.lake) if inside else where}
        replace_table(spark.createDataFrame([(stored["path"], json.dumps(stored, default=str))],
                                            "path string, metrics string"), table_path(cfg.lake, "quality_model"))
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
    # counted on the tables as read and written, none derived: documents read, quality rows and kept rows per source
    # (as Delta's writer counted them into the commits: no query), rows not kept per source (one query)
    n_in = row_count(spark, table_path(cfg.lake, "documents"), version)
    q_version = table_version(spark, qpath)
    assert q_version is not None  # written above
    n_tagged = table_rows(spark, qpath, q_version, by="source")
    kpath = table_path(cfg.lake, "quality_kept")
    n_kept = table_rows(spark, kpath, table_version(spark, kpath), by="source")
    n_dropped = {r.source: int(r[1]) for r in q.filter(~F.col("keep")).groupBy("source").count().collect()}
    per_source = [Row(source=s, n=n_tagged.get(s, 0), kept=n_kept.get(s, 0), dropped=n_dropped.get(s, 0))
                  for s in sorted(set(n_tagged) | set(n_kept) | set(n_dropped))]
    rule_counts = spark.read.format("delta").load(table_path(cfg.lake, "quality_counts")).collect()
    res = StageResult("quality", records_in=n_in, outputs={"quality": q_version})
    for r in per_source:
        res.records_out += int(r.kept)
        res.dropped += int(r.dropped)
        log.info("quality %s: in=%d kept=%d dropped=%d", r.source, r.n, r.kept, r.dropped)
    if sum(int(r.n) for r in per_source) != n_in:
        raise AssertionError(f"quality: {n_in} documents read but {sum(int(r.n) for r in per_source)} quality rows")
    res.details = {"per_rule": [r.asDict() for r in rule_counts],
                   "per_source": {r.source: {"in": int(r.n), "kept": int(r.kept), "dropped": int(r.dropped)}
                                  for r in per_source}}
    if model_info is not None:
        res.details["quality_model"] = {k: v for k, v in model_info.items() if k != "top_features"}
        log.info("quality_model %s: AUC %.3f, precision %.3f / recall %.3f at %.2f, select=%s on %s",
                 model_info["path"], model_info["auc"], model_info["precision"], model_info["recall"],
                 model_info["threshold"], model_info["select"], model_info["applied_to"])
    for r in rule_counts:
        log.info("quality rule %s/%s dropped %d (e.g. %s)", r.source, r.rule, r.dropped, r.example_doc_id)
    res.check()
    return res
