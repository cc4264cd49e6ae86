"""Stage ``verify_mds``: read every MDS stream ``write_mds`` published back with the real ``streaming`` library
(:func:`mixlake.mds.verify.verify_stream`) and check sample counts and shard hashes against each stream's index and
the ``mds_manifest`` table."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from mixlake.config import MixlakeConfig
from mixlake.delta import read_table
from mixlake.mds.verify import verify_stream
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    m = cfg.mds
    rows = read_table(spark, cfg.lake, "mds_manifest").collect()
    expected: dict[str, int] = {}
    for r in rows:
        expected[r.source] = expected.get(r.source, 0) + int(r.samples)
    reports = {}
    for source, n in sorted(expected.items()):
        rep = verify_stream(f"{m.root}/{source}", n, m.max_seq_len if m.format == "tokens" else None, s3=cfg.s3)
        reports[source] = rep
        log.info("verify_mds %s: %d samples in %d shards: %s", source, rep["samples"], rep["shards"],
                 "ok" if rep["ok"] else "; ".join(rep["problems"]))
    bad = {s: r["problems"] for s, r in reports.items() if not r["ok"]}
    if bad:
        raise RuntimeError(f"MDS verification failed: {bad}")
    return StageResult("verify_mds", details={"streams": reports})
