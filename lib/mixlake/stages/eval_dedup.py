"""Stage ``eval_dedup``: score the ``duplicates`` table against a gold file (``eval.gold``; default: the sample's
ground truth when the sample is enabled). Writes ``${lake}/report/dedup_eval.json`` and Delta ``dedup_eval``."""

from __future__ import annotations

import json
import logging
import os

from omegaconf import DictConfig
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.config import ConfigError, s3_config
from mixlake.dedup.evaluate import load_gold, score
from mixlake.delta import lake_root, read_table, replace_table, table_path
from mixlake.sample.generate import sample_config
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
    if path and not os.path.exists(path):
        raise ConfigError(f"config key 'eval.gold': no such file {path}")


def run(spark: SparkSession, cfg: DictConfig) -> StageResult:
    path = gold_path(cfg)
    if path is None:
        return StageResult("eval_dedup", details={"skipped": "no eval.gold and sample disabled"})
    gold = load_gold(path)
    dups = read_table(spark, cfg.lake, "duplicates")
    docs = read_table(spark, cfg.lake, "documents").select("doc_id", "source_id", "text")
    rows = dups.join(docs, "doc_id").filter(F.col("source_id").isNotNull()) \
        .select("source_id", "cluster_id", "text").collect()
    cluster_of = {r.source_id: r.cluster_id for r in rows}
    texts = {r.source_id: r.text for r in rows}
    threshold = float(cfg.get("eval", {}).get("threshold") or cfg.dedup.threshold)
    metrics = score(gold, cluster_of, texts, threshold=threshold,
                    max_pairs=int(cfg.get("eval", {}).get("max_pairs") or 200_000))
    metrics["gold_file"] = path
    if sample_config(cfg).enabled and not cfg.get("eval", {}).get("gold"):
        metrics["recall_near_at_0.85"] = score(
            [g for g in gold if g[2] < 1.0], cluster_of, None, threshold=0.85)["recall_at_threshold"]
    storage.write_text(f"{lake_root(cfg.lake)}/report/dedup_eval.json", json.dumps(metrics, indent=1, sort_keys=True),
                       s3_config(cfg))
    replace_table(spark.createDataFrame([{"metrics": json.dumps(metrics, sort_keys=True), "gold_file": path}]),
                  table_path(cfg.lake, "dedup_eval"))
    log.info("dedup eval: recall@%.2f=%s precision=%s f1=%s false_merges=%s", threshold,
             metrics["recall_at_threshold"], metrics["precision"], metrics["f1"], metrics["false_merges_below_0.5"])
    return StageResult("eval_dedup", details=metrics)
