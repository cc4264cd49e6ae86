"""Stage ``report`` (the pipeline's last): ``${lake}/report/index.html`` + ``report.md`` from the lake's tables."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from mixlake.config import MixlakeConfig
from mixlake.report.report import write_report
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    d = cfg.dedup
    b, r = d.band_rows()
    path = write_report(spark, cfg.lake, b, r, d.threshold, cfg.s3)
    print(f"[mixlake] report: {path}", flush=True)
    return StageResult("report", details={"path": path})
