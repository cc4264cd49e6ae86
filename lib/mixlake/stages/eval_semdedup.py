"""Stage ``eval_semdedup``: each embedder of ``semdedup.eval_embedders`` scored on real pages extracted twice
(``semdedup.eval_pages``; see :mod:`mixlake.semdedup.evaluate`) → Delta ``semdedup_eval`` (one row per embedder and
eps, plus MinHash's) and ``${lake}/report/semdedup_eval.json``. Skipped (said in the result) when no pages are
configured."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import numpy as np
from pyspark.sql import SparkSession

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.delta import lake_root, replace_table, table_path
from mixlake.errors import ConfigError
from mixlake.ingest.readers import html_to_text
from mixlake.semdedup.embed import embed
from mixlake.semdedup.evaluate import JACCARD_BUCKETS, extractor_pairs, minhash_row, pair_metrics
from mixlake.semdedup.semdedup import semantic_dedup
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)
EVAL_DDL = ("embedder string, eps double, pages long, " + ", ".join(
    f"pairs_{n} long, recall_{n} double" for n, _, _ in JACCARD_BUCKETS) +
    ", cross_page_merges long, docs_per_second double, mb_per_second double")


def validate(cfg: MixlakeConfig) -> None:
    pattern = cfg.semdedup.eval_pages
    if pattern and not storage.glob_files(pattern, cfg.s3)[1]:
        raise ConfigError(f"config key 'semdedup.eval_pages': no file matches {pattern}")


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    sd = cfg.semdedup
    if not sd.eval_pages:
        return StageResult("eval_semdedup", details={"skipped": "semdedup.eval_pages is not set"})
    validate(cfg)
    files = storage.glob_files(sd.eval_pages, cfg.s3)[1]
    rows = extractor_pairs([(uri, storage.read_bytes(uri, cfg.s3)) for uri, _, _ in files], sd.eval_min_words,
                           html_to_text)
    if not rows:
        raise ConfigError(f"config key 'semdedup.eval_pages': no page of {len(files)} has both extractions with "
                          f"semdedup.eval_min_words={sd.eval_min_words} words")
    docs = spark.createDataFrame([{k: r[k] for k in ("doc_id", "source", "text", "n_chars")} for r in rows],
                                 "doc_id string, source string, text string, n_chars long").repartition(2, "doc_id")
    n_chars = sum(r["n_chars"] for r in rows)
    out: list[dict[str, Any]] = [{**minhash_row(rows), "docs_per_second": None, "mb_per_second": None}]
    for name in sd.eval_embedders:
        ecfg = dataclasses.replace(sd, embedder=name)
        t0 = time.time()
        emb = embed(docs, ecfg).localCheckpoint()  # eager: the embedding time alone
        seconds = time.time() - t0
        res = semantic_dedup(docs, emb, ecfg, {})
        vectors = {r.doc_id: (r.cluster, np.asarray(r.vec, dtype=np.float64)) for r in res.vectors.collect()}
        for m in pair_metrics(rows, vectors, sd.sweep()):
            out.append({"embedder": name, **m, "docs_per_second": round(len(rows) / seconds, 1),
                        "mb_per_second": round(n_chars / seconds / 1e6, 3)})
        log.info("eval_semdedup %s: %d documents embedded in %.2fs", name, len(rows), seconds)
    for r in out:
        log.info("eval_semdedup %-20s eps=%-6s recall J<0.5=%s 0.5-0.8=%s >=0.8=%s cross-page merges=%s",
                 r["embedder"], r["eps"], r["recall_j_lt_0.5"], r["recall_j_0.5_0.8"], r["recall_j_ge_0.8"],
                 r["cross_page_merges"])
    storage.write_text(f"{lake_root(cfg.lake)}/report/semdedup_eval.json",
                       json.dumps({"pages": sd.eval_pages, "rows": out}, indent=1, sort_keys=True), cfg.s3)
    replace_table(spark.createDataFrame([{k.replace(".", "_"): v for k, v in r.items()} for r in out],
                                        EVAL_DDL.replace(".", "_")), table_path(cfg.lake, "semdedup_eval"))
    return StageResult("eval_semdedup", details={"pages": len(rows) // 2, "rows": out})
