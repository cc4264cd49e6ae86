"""Stage ``verify_mds``: check every MDS stream ``write_mds`` published — every shard's size, hashes and sample count
by Spark tasks, the index's totals against the ``mds_manifest`` table, and a seeded sample of shards (``verify.full``:
all of them) read back with the real ``streaming`` library (:mod:`mixlake.mds.verify`). Fails naming each problem."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from mixlake.config import MixlakeConfig
from mixlake.delta import read_table
from mixlake.mds.verify import verify_streams
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    m = cfg.mds
    expected: dict[str, int] = {}
    for r in read_table(spark, cfg.lake, "mds_manifest").select("source", "samples").collect():  # a row per part
        expected[r.source] = expected.get(r.source, 0) + int(r.samples)
    streams = {source: f"{m.root}/{source}" for source in sorted(expected)}
    reports = verify_streams(spark, streams, expected, cfg.verify, m.max_seq_len if m.format == "tokens" else None,
                             s3=cfg.s3)
    for source, rep in reports.items():
        log.info("verify_mds %s: %d samples in %d shards, %d shards (%d samples) read back: %s", source,
                 rep["samples"], rep["shards"], rep["shards_read"], rep["samples_read"],
                 "ok" if rep["ok"] else "; ".join(rep["problems"]))
    bad = {s: r["problems"] for s, r in reports.items() if not r["ok"]}
    if bad:
        raise RuntimeError(f"MDS verification failed: {bad}")
    return StageResult("verify_mds", details={"streams": reports})
