"""Stage ``report`` (the pipeline's last): ``${lake}/report/index.html`` + ``report.md`` from the lake's tables."""

from __future__ import annotations

import logging

from omegaconf import DictConfig
from pyspark.sql import SparkSession

from mixlake.config import s3_config
from mixlake.report.report import write_report
from mixlake.stages.dedup import dedup_config
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: DictConfig) -> StageResult:
    d = dedup_config(cfg)
    b, r = d.band_rows()
    path = write_report(spark, cfg.lake, b, r, d.threshold, s3_config(cfg))
    print(f"[mixlake] report: {path}", flush=True)
    return StageResult("report", details={"path": path})
