"""Stage ``decontam``: the cleaned corpus minus benchmark text → Delta ``documents_decontaminated`` (the input's
schema; what the stages after it read), ``contamination`` (every match: document, eval task and item, matched
n-gram text and character span, action), ``decontam_counts`` (per task), and per task
``${lake}/eval_clean/<task>.jsonl`` (the eval items not found in the corpus) and ``<task>.dirty.jsonl`` (the rest),
which exactly partition the eval set, in its own order. See :mod:`mixlake.decontam.decontam`."""

from __future__ import annotations

import json
import logging
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.decontam.decontam import decontaminate, seen_items, task_counts
from mixlake.decontam.index import NgramIndex, load_index
from mixlake.delta import read_latest, replace_table, row_count, table_path, table_version
from mixlake.errors import ConfigError
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def validate(cfg: MixlakeConfig) -> None:
    if not cfg.decontam.eval_sets():
        raise ConfigError("decontam is in stages but decontam.evals is empty: add an eval set "
                          "(+decontam.evals.NAME.path=/evals/x.jsonl +decontam.evals.NAME.fields=[question,answer]) "
                          "or remove decontam from stages")


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    dc = cfg.decontam
    validate(cfg)
    source = cleaned_input(cfg, dc.input_table, stage="decontam")
    docs, version = read_latest(spark, cfg.lake, source)
    t0 = time.time()
    index = load_index(dc, cfg.s3)
    build_seconds = time.time() - t0
    log.info("decontam: %d eval items of %d tasks, %d n-grams (n in %s), %.1f MB, built in %.2fs",
             len(index.items), len({i.task for i in index.items}), index.n_ngrams(), index.sizes,
             index.nbytes() / 1e6, build_seconds)
    result = decontaminate(docs, index, dc)
    try:
        cont_path = table_path(cfg.lake, "contamination")
        replace_table(result.contamination, cont_path)
        out_path = table_path(cfg.lake, "documents_decontaminated")
        replace_table(result.documents, out_path, partition_by=["source"])
        contamination = spark.read.format("delta").load(cont_path)
        dirty = seen_items(contamination)
        counts = task_counts(contamination, result.actions, index, dirty)
        counts_path = table_path(cfg.lake, "decontam_counts")
        replace_table(spark.createDataFrame(counts, "task string, items long, items_checked long, "
                                            "items_contaminated long, pct_contaminated double, docs_hit long, "
                                            "docs_changed long, docs_dropped long, ngrams_ignored_common long"),
                      counts_path)
        dropped = {r.action: int(r.n) for r in result.actions.filter(F.col("action").startswith("dropped"))
                   .groupBy("action").agg(F.count(F.lit(1)).alias("n")).collect()}
        # rows of the input version and of the written table, as Delta's writer counted them into the commits
        n_in = row_count(spark, table_path(cfg.lake, source), version)
        out_version = table_version(spark, out_path)
        assert out_version is not None  # written above
        n_out = row_count(spark, out_path, out_version)
    finally:
        result.unpersist()
    files = write_eval_splits(cfg, index, dirty)
    for c in counts:
        log.info("decontam %s: %d/%d items contaminated (%.1f%%), %d documents hit, %d changed, %d dropped",
                 c["task"], c["items_contaminated"], c["items"], c["pct_contaminated"], c["docs_hit"],
                 c["docs_changed"], c["docs_dropped"])
    res = StageResult("decontam", records_in=n_in, records_out=n_out, dropped=sum(dropped.values()),
                      outputs={"documents_decontaminated": out_version,
                               "contamination": table_version(spark, cont_path),
                               "decontam_counts": table_version(spark, counts_path)},
                      details={"input_table": source, "mode": dc.mode, "dropped": dropped, "tasks": counts,
                               "index": {"items": len(index.items), "ngrams": index.n_ngrams(), "sizes": index.sizes,
                                         "mb": round(index.nbytes() / 1e6, 3),
                                         "build_seconds": round(build_seconds, 3)},
                               "eval_files": files})
    res.check()
    return res


def write_eval_splits(cfg: MixlakeConfig, index: NgramIndex, dirty: set[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """``eval_clean/<task>.jsonl`` and ``<task>.dirty.jsonl``: every item of the task in exactly one, in file
    order, as it was read."""
    out_dir = storage.join(cfg.lake, "eval_clean")
    files = {}
    for task in sorted({it.task for it in index.items}):
        clean, dirt = [], []
        for it in index.items:
            if it.task == task:
                (dirt if (task, it.item_id) in dirty else clean).append(
                    json.dumps(it.record, ensure_ascii=False, sort_keys=True, default=str))
        for suffix, lines in ((".jsonl", clean), (".dirty.jsonl", dirt)):
            storage.write_bytes(storage.join(out_dir, task + suffix),
                                ("\n".join(lines) + ("\n" if lines else "")).encode(), cfg.s3)
        files[task] = {"clean": len(clean), "dirty": len(dirt)}
    return files
