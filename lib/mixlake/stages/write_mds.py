"""Stage ``write_mds``: the cleaned corpus (as the mixture plan selects it) → one MDS stream per source under
``mds.root`` (default ``${lake}/mds``), plus Delta ``mds_manifest`` (source, part, samples, docs, tokens, shards).
Stage ``verify_mds`` (its own module) reads them back with the real ``streaming`` library."""

from __future__ import annotations

import logging
import time

from pyspark.sql import SparkSession

from mixlake.config import MixlakeConfig
from mixlake.delta import read_latest, replace_table, row_count, table_exists, table_path, table_version
from mixlake.errors import ConfigError
from mixlake.mds.write import MDSConfig, selection_counts, write_streams
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import StageResult
from mixlake.stages.tokens import stored_ids_for

log = logging.getLogger(__name__)


def plan_fractions(spark: SparkSession, cfg: MixlakeConfig, m: MDSConfig) -> dict[str, float]:
    if m.select == "all":
        return {}
    path = table_path(cfg.lake, "mixture")
    if not table_exists(spark, path):
        log.info("write_mds: no mixture plan; writing every document")
        return {}
    rows = spark.read.format("delta").load(path).filter("plan = 0").collect()
    return {r.source: min(1.0, float(r.epochs)) for r in rows}


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    m = cfg.mds
    tok = cfg.tokenizer
    source = cleaned_input(cfg, m.input_table, stage="write_mds")
    docs, version = read_latest(spark, cfg.lake, source)
    assert m.root is not None  # set at compose time
    root = m.root
    t0 = time.time()
    fractions = plan_fractions(spark, cfg, m)
    packed, ids_from = docs, "tokenized here (mds.token_ids=tokenize)" if m.format == "tokens" else "text"
    if m.format == "tokens" and m.token_ids != "tokenize":
        stored, why = stored_ids_for(spark, cfg.lake, source, version, tok)
        if stored is not None:
            packed, ids_from = stored.select("doc_id", "source", "n_bytes", "ids"), why
        elif m.token_ids == "table":
            raise ConfigError(f"config key 'mds.token_ids' is 'table' but {why}; run the tokens stage on "
                              f"{source} first, or set mds.token_ids=auto")
        else:
            ids_from = f"tokenized here: {why}"
    log.info("write_mds: %s@%s, token ids: %s", source, version, ids_from)
    manifest = write_streams(packed, m, tok, root, fractions, cfg.s3, cfg.lock)
    seconds = time.time() - t0
    if not manifest:
        raise ConfigError("write_mds wrote nothing")
    path = table_path(cfg.lake, "mds_manifest")
    replace_table(spark.createDataFrame(manifest, "source string, part int, samples bigint, docs bigint, "
                                        "tokens bigint, shards int"), path)
    # counted where rows are produced: documents read (the input version's rows, as Delta's writer counted them),
    # documents the writer tasks wrote (their own counters, in the manifest), documents the plan did not select
    # (Spark, on the selection column)
    n_docs = row_count(spark, table_path(cfg.lake, source), version)
    written = sum(r["docs"] for r in manifest)
    samples = sum(r["samples"] for r in manifest)
    chosen = selection_counts(docs, m, fractions)
    not_selected = sum(no for _, no in chosen.values())
    skipped_sources = sorted(set(chosen) - {r["source"] for r in manifest})  # mds.empty_source=skip
    skipped_docs = sum(chosen[s][0] for s in skipped_sources)
    log.info("write_mds: %d documents → %d samples in %d parts under %s (%.1fs)", written, samples, len(manifest),
             root, seconds)
    res = StageResult("write_mds", records_in=n_docs, records_out=written, dropped=not_selected + skipped_docs,
                      outputs={"mds_manifest": table_version(spark, path)},
                      details={"input_table": source, "input_version": version, "token_ids": ids_from,
                               "root": root, "format": m.format, "samples": samples, "seconds": seconds,
                               "dropped": {"not selected by the mixture plan (epochs < 1)": not_selected,
                                           "source produced no samples (mds.empty_source=skip)": skipped_docs},
                               "skipped_sources": skipped_sources})
    res.check()
    return res
