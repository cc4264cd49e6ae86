"""Stage ``write_mds``: the cleaned corpus (as the mixture plan selects it) → one MDS stream per source under
``mds.root`` (default ``${lake}/mds``), plus Delta ``mds_manifest`` (source, part, samples, docs, tokens, shards).
Stage ``verify_mds`` reads them back with the real ``streaming`` library."""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig
from pyspark.sql import SparkSession

from mixlake.config import ConfigError, plain, s3_config, to_dataclass
from mixlake.delta import lake_root, read_table, replace_table, table_exists, table_path, table_version
from mixlake.mds.write import MDSConfig, selection_counts, write_streams
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import StageResult
from mixlake.stages.tokens import tokenizer_config

log = logging.getLogger(__name__)


def mds_config(cfg: DictConfig) -> MDSConfig:
    return to_dataclass(MDSConfig, plain(cfg.get("mds")), "mds")


def mds_root(cfg: DictConfig, m: MDSConfig) -> str:
    return m.root or f"{lake_root(cfg.lake)}/mds"


def validate(cfg: DictConfig) -> None:
    mds_config(cfg)


def plan_fractions(spark: SparkSession, cfg: DictConfig, m: MDSConfig) -> dict[str, float]:
    if m.select == "all":
        return {}
    path = table_path(cfg.lake, "mixture")
    if not table_exists(spark, path):
        log.info("write_mds: no mixture plan; writing every document")
        return {}
    rows = spark.read.format("delta").load(path).filter("plan = 0").collect()
    return {r.source: min(1.0, float(r.epochs)) for r in rows}


def run(spark: SparkSession, cfg: DictConfig) -> StageResult:
    m = mds_config(cfg)
    tok = tokenizer_config(cfg)
    source = cleaned_input(cfg, m.input_table, stage="write_mds")
    docs = read_table(spark, cfg.lake, source)
    root = mds_root(cfg, m)
    t0 = time.time()
    fractions = plan_fractions(spark, cfg, m)
    manifest = write_streams(docs, m, tok, root, fractions, s3_config(cfg))
    seconds = time.time() - t0
    if not manifest:
        raise ConfigError("write_mds wrote nothing")
    path = table_path(cfg.lake, "mds_manifest")
    replace_table(spark.createDataFrame(manifest, "source string, part int, samples bigint, docs bigint, "
                                        "tokens bigint, shards int"), path)
    # counted where rows are produced: documents read (Spark), documents the writer tasks wrote (their own
    # counters, in the manifest), documents the plan did not select (Spark, on the selection column)
    n_docs = docs.count()
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
                      details={"input_table": source, "root": root, "format": m.format, "samples": samples,
                               "seconds": seconds,
                               "dropped": {"not selected by the mixture plan (epochs < 1)": not_selected,
                                           "source produced no samples (mds.empty_source=skip)": skipped_docs},
                               "skipped_sources": skipped_sources})
    res.check()
    return res


def run_verify(spark: SparkSession, cfg: DictConfig) -> StageResult:
    from mixlake.mds.verify import verify_stream

    m = mds_config(cfg)
    root = mds_root(cfg, m)
    rows = read_table(spark, cfg.lake, "mds_manifest").collect()
    expected: dict[str, int] = {}
    for r in rows:
        expected[r.source] = expected.get(r.source, 0) + int(r.samples)
    reports = {}
    for source, n in sorted(expected.items()):
        rep = verify_stream(f"{root}/{source}", n, m.max_seq_len if m.format == "tokens" else None,
                            s3=s3_config(cfg))
        reports[source] = rep
        log.info("verify_mds %s: %d samples in %d shards: %s", source, rep["samples"], rep["shards"],
                 "ok" if rep["ok"] else "; ".join(rep["problems"]))
    bad = {s: r["problems"] for s, r in reports.items() if not r["ok"]}
    if bad:
        raise RuntimeError(f"MDS verification failed: {bad}")
    return StageResult("verify_mds", details={"streams": reports})
