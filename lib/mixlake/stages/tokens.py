"""Stage ``tokens``: per-document token counts (Delta ``token_counts``) and per-source totals (``token_summary``)
of the cleaned corpus, with the configured tokenizer."""

from __future__ import annotations

import logging
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mixlake.config import MixlakeConfig
from mixlake.delta import read_table, replace_table, table_path, table_version
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import StageResult
from mixlake.tokens.count import source_summary, token_counts
from mixlake.tokens.tokenizer import eos_id, load_tokenizer

log = logging.getLogger(__name__)


def validate(cfg: MixlakeConfig) -> None:
    load_tokenizer(cfg.tokenizer)  # a missing or corrupt tokenizer fails before the first stage runs
    eos_id(cfg.tokenizer)


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    tc = cfg.tokenizer
    source = cleaned_input(cfg, cfg.tokens.input_table, stage="tokens")
    docs = read_table(spark, cfg.lake, source)
    t0 = time.time()
    counts_path = table_path(cfg.lake, "token_counts")
    replace_table(token_counts(docs, tc), counts_path)
    seconds = time.time() - t0
    counts = spark.read.format("delta").load(counts_path)
    summary = source_summary(counts)
    replace_table(summary, table_path(cfg.lake, "token_summary"))
    rows = spark.read.format("delta").load(table_path(cfg.lake, "token_summary")).collect()
    total = sum(int(r.tokens) for r in rows)
    n_docs = sum(int(r.documents) for r in rows)
    for r in rows:
        log.info("tokens %s: documents=%d tokens=%d bytes=%d (%.2f bytes/token)", r.source, r.documents, r.tokens,
                 r.bytes, r.bytes_per_token)
    log.info("tokens: %d tokens in %.1fs = %.0f tokens/s (input table %s)", total, seconds, total / max(seconds, 1e-9),
             source)
    res = StageResult("tokens", records_in=n_docs, records_out=n_docs,
                      outputs={"token_counts": table_version(spark, counts_path)},
                      details={"input_table": source, "tokens": total, "tokens_per_second": total / max(seconds, 1e-9),
                               "per_source": {r.source: r.asDict() for r in rows}})
    assert counts.filter(F.col("n_tokens") < 0).count() == 0
    return res
