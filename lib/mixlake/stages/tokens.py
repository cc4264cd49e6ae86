"""Stage ``tokens``: every document of the cleaned corpus tokenized once with the configured tokenizer → Delta
``token_ids`` (doc_id, source, n_tokens, n_bytes, ids; ``tokens.store_ids=false`` skips it), ``token_counts`` (the
same without ``ids``) and per-source totals ``token_summary``.

``token_ids``' commit records what it was made from (:func:`provenance`: the input table, its Delta id and version,
the tokenizer's fingerprint) so that ``write_mds`` packs these ids instead of tokenizing again only when they belong
to exactly the table version it writes (:func:`stored_ids_for`)."""

from __future__ import annotations

import importlib.util
import json
import logging
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mixlake.config import MixlakeConfig
from mixlake.delta import (
    latest_commit_metadata,
    read_latest,
    replace_table,
    row_count,
    table_exists,
    table_id,
    table_path,
    table_version,
)
from mixlake.errors import ConfigError
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import StageResult
from mixlake.tokens.count import TOKEN_COUNT_COLUMNS, source_summary, token_counts, token_ids
from mixlake.tokens.tokenizer import (
    TokenizerConfig,
    eos_id,
    load_tokenizer,
    tokenizer_fingerprint,
    uses_tiktoken,
)

log = logging.getLogger(__name__)


def validate(cfg: MixlakeConfig) -> None:
    load_tokenizer(cfg.tokenizer)  # a missing or corrupt tokenizer fails before the first stage runs
    # an unknown tokenizer.engine too; tiktoken's encoder is not built here (1.2 s on the driver, for nothing: the
    # GPT-2 files it reads were just checksummed, and the workers build their own)
    if uses_tiktoken(cfg.tokenizer) and importlib.util.find_spec("tiktoken") is None:
        raise ConfigError("tokenizer.engine=tiktoken needs the PyPI package tiktoken (make setup installs it); "
                          "or set tokenizer.engine=hf")
    eos_id(cfg.tokenizer)


def provenance(spark: SparkSession, lake: str, table: str, version: int, tok: TokenizerConfig) -> dict[str, object]:
    """What token ids of ``table`` at ``version`` depend on."""
    return {"input_table": table, "input_table_id": table_id(spark, table_path(lake, table)),
            "input_version": version, "tokenizer": tokenizer_fingerprint(tok)}


def stored_ids_for(spark: SparkSession, lake: str, table: str, version: int,
                   tok: TokenizerConfig) -> tuple[DataFrame | None, str]:
    """``token_ids`` if it was made from ``table`` at ``version`` with this tokenizer, else ``None``; and why."""
    path = table_path(lake, "token_ids")
    if not table_exists(spark, path):
        return None, "no token_ids table (the tokens stage has not run, or tokens.store_ids=false)"
    ids_version, meta = latest_commit_metadata(spark, path)
    want = provenance(spark, lake, table, version, tok)
    have = json.loads(meta) if meta else {}
    stale = sorted(k for k in want if have.get(k) != want[k])
    if stale:
        return None, (f"token_ids (version {ids_version}) was made from {have.get('input_table')}@"
                      f"{have.get('input_version')} with tokenizer {have.get('tokenizer')}, not {table}@{version} "
                      f"with {want['tokenizer']} (differs in {', '.join(stale)})")
    return spark.read.format("delta").option("versionAsOf", ids_version).load(path), f"token_ids@{ids_version}"


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    tc = cfg.tokenizer
    source = cleaned_input(cfg, cfg.tokens.input_table, stage="tokens")
    docs, version = read_latest(spark, cfg.lake, source)
    t0 = time.time()
    counts_path = table_path(cfg.lake, "token_counts")
    outputs = {}
    if cfg.tokens.store_ids:
        ids_path = table_path(cfg.lake, "token_ids")
        meta = provenance(spark, cfg.lake, source, version, tc)
        replace_table(token_ids(docs, tc), ids_path, user_metadata=json.dumps(meta, sort_keys=True))
        outputs["token_ids"] = table_version(spark, ids_path)
        # the counts are the stored table's columns (Parquet reads them without the ids): one tokenizer pass
        replace_table(spark.read.format("delta").load(ids_path).select(*TOKEN_COUNT_COLUMNS), counts_path)
    else:
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
    log.info("tokens: %d tokens in %.1fs = %.0f tokens/s (input table %s@%s)", total, seconds,
             total / max(seconds, 1e-9), source, version)
    outputs["token_counts"] = table_version(spark, counts_path)
    n_in = row_count(spark, table_path(cfg.lake, source), version)  # the input version's rows, as Delta counted them
    res = StageResult("tokens", records_in=n_in, records_out=n_docs, outputs=outputs,
                      details={"input_table": source, "input_version": version, "tokens": total,
                               "tokens_per_second": total / max(seconds, 1e-9),
                               "per_source": {r.source: r.asDict() for r in rows}})
    res.check()
    assert counts.filter(F.col("n_tokens") < 0).count() == 0
    return res
