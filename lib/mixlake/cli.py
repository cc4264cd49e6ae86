"""The ``mixlake`` command, and the entry shared by every ``jobs/<stage>.py`` and ``jobs/pipeline.py``.

    mixlake run [overrides]          the configured stages (the pipeline)
    mixlake <stage> [overrides]      one stage (always runs)
    mixlake stages                   the stages, one line each
    mixlake [run|<stage>] --cfg      the composed config; no Spark
    mixlake --help

Configuration is composed once (:func:`mixlake.config.compose`, Hydra's Compose API over the ``mixlake.conf`` package
shipped in the wheel), so it works the same under ``python``, ``spark-submit`` and Databricks ``spark_python_task``
parameters, never changes the working directory and writes no ``outputs/`` folder. Arguments are Hydra overrides
(``key=value``, ``+sources.NAME.path=...``); ``spark.conf.<any.spark.key>=<value>`` sets a Spark property verbatim.
A config error exits with code 2 before any Spark session starts; a lake whose lease another run holds exits 3.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from mixlake.config import ConfigError, compose
from mixlake.stages import STAGE_DESCRIPTIONS, STAGE_MODULES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("mixlake")

COMMON = """Common overrides:
  lake=/data/lake                         where Delta tables (and MDS, report) go
  +sources.web.path='/data/web/*.jsonl.gz' +sources.web.format=jsonl
  sample.enabled=false                    do not use the built-in sample corpus (sample.scale=20: a bigger one)
  stages=[ingest,quality,dedup]           (run) which stages, in order; force=true reruns finished ones
  model.params=7e9 | budget.tokens=1e12   how much data the mixture plans
  dedup.threshold=0.8 quality=[gopher,c4] mds.format=text
  spark.master=local[4]  spark.conf.spark.sql.shuffle.partitions=64
"""

USAGE = """usage: mixlake run [key=value ...] [--cfg]      the pipeline (the configured stages)
       mixlake <stage> [key=value ...] [--cfg]  one stage; `mixlake stages` lists them
       mixlake --help

""" + COMMON

JOB_USAGE = """usage: python jobs/{job}.py [key=value ...] [--cfg] [--help]

""" + COMMON


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("py4j", "urllib3", "trafilatura", "htmldate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stages_listing() -> str:
    return "\n".join(f"  {name:<11} {STAGE_DESCRIPTIONS[name]}" for name in STAGE_MODULES)


def main(job: str, argv: Sequence[str] | None = None) -> int:
    """Run one stage (``job`` = its name) or the pipeline (``job='pipeline'``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print(JOB_USAGE.format(job=job) if job != "command" else USAGE)
        return 0
    print_cfg = "--cfg" in argv
    argv = [a for a in argv if a not in ("--cfg", "job")]
    _setup_logging()
    try:
        if print_cfg:
            print(OmegaConf.to_yaml(OmegaConf.structured(compose(argv))))
            return 0
        cfg = compose(argv)
        if job != "pipeline":
            from mixlake.stages import stage_runner

            stage_runner(job)  # an unknown stage name fails before Spark starts
    except ConfigError as e:
        print(f"mixlake: config error: {e}", file=sys.stderr)
        return 2
    from mixlake.lock import LakeLocked
    from mixlake.pipeline import run_pipeline
    from mixlake.spark import get_spark

    t0 = time.time()

    def session() -> SparkSession:  # started by the pipeline once it holds the lake's lease (beside the sample)
        import mixlake

        spark = get_spark(cfg.spark, cfg.s3)
        log.info("mixlake %s from %s on %s", mixlake.__version__, os.path.dirname(mixlake.__file__),
                 spark.sparkContext.master)
        return spark

    try:
        run_pipeline(session, cfg, only=None if job == "pipeline" else [job])
    except ConfigError as e:
        print(f"mixlake: config error: {e}", file=sys.stderr)
        return 2
    except LakeLocked as e:
        print(f"mixlake: {e}", file=sys.stderr)
        return 3
    log.info("done in %.1fs", time.time() - t0)
    return 0


def command(argv: Sequence[str] | None = None) -> int:
    """The ``mixlake`` console command (setup.py entry point)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("--help", "-h", "help"):
        print(USAGE)
        return 0
    sub, rest = argv[0], argv[1:]
    if sub == "stages":
        print(stages_listing())
        return 0
    if sub == "run":
        return main("pipeline", rest)
    if sub in STAGE_MODULES:
        return main(sub, rest)
    if sub == "--cfg" or "=" in sub:  # `mixlake --cfg`, `mixlake lake=/x --cfg`: the pipeline's config
        return main("pipeline", argv)
    print(f"mixlake: unknown command {sub!r}\n\n{USAGE}\nstages:\n{stages_listing()}", file=sys.stderr)
    return 2


__all__ = ["command", "main"]


if __name__ == "__main__":
    raise SystemExit(command())
