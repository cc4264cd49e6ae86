"""Stage ``eval_dedup``: score the ``duplicates`` table against a gold file (``eval.gold``; default: the sample's
ground truth when the sample is enabled), distributed (:func:`mixlake.dedup.evaluate.score_clusters`). Writes
``${lake}/report/dedup_eval.json`` and Delta ``dedup_eval``."""

from __future__ import annotations

import json
import logging
import os

from omegaconf import DictConfig
from pyspark.sql import SparkSession

from mixlake import storage
from mixlake.config import ConfigError, s3_config
from mixlake.dedup.dedup import params
from mixlake.dedup.evaluate import load_gold, score_clusters
from mixlake.delta import lake_root, read_table, replace_table, scratch_dir, table_path
from mixlake.sample.generate import sample_config
from mixlake.stages.dedup import dedup_config
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def gold_path(cfg: DictConfig) -> str | None:
    ev = cfg.get("eval") or {}
    if ev.get("gold"):
        return str(ev.gold)
    sc = sample_config(cfg)
    return os.path.join(sc.dir, "ground_truth.json") if sc.enabled else None


def validate(cfg: DictConfig) -> None:
    path = cfg.get("eval", {}).get("gold")
    if path and not storage.exists(path, s3_config(cfg)):
        raise ConfigError(f"config key 'eval.gold': no such file {path}")


def run(spark: SparkSession, cfg: DictConfig) -> StageResult:
    path = gold_path(cfg)
    if path is None:
        return StageResult("eval_dedup", details={"skipped": "no eval.gold and sample disabled"})
    try:
        gold = load_gold(path, storage.read_bytes(path, s3_config(cfg)).decode())
    except ValueError as e:
        raise ConfigError(f"config key 'eval.gold': {e}") from e
    dups = read_table(spark, cfg.lake, "duplicates")
    docs = read_table(spark, cfg.lake, "documents").select("doc_id", "source", "source_id", "text")
    ev = cfg.get("eval") or {}
    d = dedup_config(cfg)
    threshold = float(ev.get("threshold") or d.threshold)
    tmp = scratch_dir(cfg.lake, "eval_dedup")
    spark.sparkContext.setCheckpointDir(f"{tmp}/checkpoints")
    try:
        metrics = score_clusters(spark, gold, dups, docs, threshold, params(d),
                                 max_cluster_size=int(ev.get("max_cluster_size") or 200))
    finally:
        storage.rmtree(tmp, s3_config(cfg))
    metrics["gold_file"] = path
    storage.write_text(f"{lake_root(cfg.lake)}/report/dedup_eval.json", json.dumps(metrics, indent=1, sort_keys=True),
                       s3_config(cfg))
    replace_table(spark.createDataFrame([{"metrics": json.dumps(metrics, sort_keys=True), "gold_file": path}]),
                  table_path(cfg.lake, "dedup_eval"))
    log.info("dedup eval: recall@%.2f=%s precision=%s f1=%s false_merges=%s borderline=%s", threshold,
             metrics["recall_at_threshold"], metrics["precision"], metrics["f1"], metrics["false_merges_below_0.5"],
             metrics["borderline_pairs"])
    return StageResult("eval_dedup", details=metrics)
