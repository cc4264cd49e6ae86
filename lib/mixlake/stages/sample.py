"""Stage ``sample``: write the built-in synthetic corpus (files + ground truth) under ``sample.dir``."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from mixlake.config import MixlakeConfig
from mixlake.sample.generate import ensure_sample
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    sc = cfg.sample
    if not sc.enabled:
        return StageResult("sample", details={"skipped": "sample.enabled=false"})
    generated = ensure_sample(sc)
    return StageResult("sample", details={"dir": sc.dir, "generated": generated})
