"""Stage ``eval_dedup``: score the ``duplicates`` table against a gold file (``eval.gold``; default: the sample's
ground truth when the sample is enabled), distributed (:func:`mixlake.dedup.evaluate.score_clusters`). Writes
``${lake}/report/dedup_eval.json`` and Delta ``dedup_eval``."""

from __future__ import annotations

import json
import logging
import os

from pyspark.sql import SparkSession

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.dedup.dedup import params
from mixlake.dedup.evaluate import load_gold, score_clusters
from mixlake.delta import lake_root, read_table, replace_table, table_path
from mixlake.errors import ConfigError
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def gold_path(cfg: MixlakeConfig) -> str | None:
    if cfg.eval.gold:
        return cfg.eval.gold
    return os.path.join(cfg.sample.dir, "ground_truth.json") if cfg.sample.enabled else None


def validate(cfg: MixlakeConfig) -> None:
    if cfg.eval.gold and not storage.exists(cfg.eval.gold, cfg.s3):
        raise ConfigError(f"config key 'eval.gold': no such file {cfg.eval.gold}")


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    path = gold_path(cfg)
    if path is None:
        return StageResult("eval_dedup", details={"skipped": "no eval.gold and sample disabled"})
    try:
        gold = load_gold(path, storage.read_bytes(path, cfg.s3).decode())
    except ValueError as e:
        raise ConfigError(f"config key 'eval.gold': {e}") from e
    dups = read_table(spark, cfg.lake, "duplicates")
    docs = read_table(spark, cfg.lake, "documents").select("doc_id", "source", "source_id", "text")
    d = cfg.dedup
    threshold = cfg.eval.threshold or d.threshold
    metrics = score_clusters(spark, gold, dups, docs, threshold, params(d), max_cluster_size=cfg.eval.max_cluster_size)
    metrics["gold_file"] = path
    storage.write_text(f"{lake_root(cfg.lake)}/report/dedup_eval.json", json.dumps(metrics, indent=1, sort_keys=True),
                       cfg.s3)
    replace_table(spark.createDataFrame([{"metrics": json.dumps(metrics, sort_keys=True), "gold_file": path}]),
                  table_path(cfg.lake, "dedup_eval"))
    log.info("dedup eval: recall@%.2f=%s precision=%s f1=%s false_merges=%s borderline=%s", threshold,
             metrics["recall_at_threshold"], metrics["precision"], metrics["f1"], metrics["false_merges_below_0.5"],
             metrics["borderline_pairs"])
    return StageResult("eval_dedup", details=metrics)
