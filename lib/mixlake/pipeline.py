"""Run the configured ``stages`` in order in one SparkSession, printing one line per stage."""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig
from pyspark.sql import SparkSession

from mixlake.config import ConfigError
from mixlake.stages import stage_runner, stage_validator
from mixlake.stages.result import StageResult

log = logging.getLogger("mixlake")


class StageFailed(RuntimeError):
    """A stage raised; earlier stages' outputs are intact (each wrote its own Delta commits)."""


def run_pipeline(spark: SparkSession, cfg: DictConfig, only: list[str] | None = None) -> list[StageResult]:
    """Run ``cfg.stages`` (or just ``only``: a single job keeps the pipeline's ``stages`` for context)."""
    stages = list(only) if only is not None else list(cfg.stages)
    runners = [(name, stage_runner(name)) for name in stages]  # unknown stage names fail before any work
    for name in stages:
        stage_validator(name)(cfg)  # every stage's config is checked before the first one runs
    results = []
    for name, runner in runners:
        log.info("stage %s: starting", name)
        t0 = time.time()
        try:
            res = runner(spark, cfg)
        except ConfigError as e:
            raise ConfigError(f"stage '{name}': {e}") from e
        except Exception as e:
            raise StageFailed(f"stage '{name}' failed: {type(e).__name__}: {e}") from e
        res.seconds = time.time() - t0
        print(res.line(), flush=True)
        results.append(res)
    return results
