"""Command-line entry shared by every ``jobs/<stage>.py`` and ``jobs/pipeline.py``.

Configuration is composed with Hydra's Compose API from the ``mixlake.conf`` package (shipped inside the wheel), so
it works the same under ``python``, ``spark-submit`` and Databricks ``spark_python_task`` parameters, never changes
the working directory and writes no ``outputs/`` folder. Arguments are Hydra overrides (``key=value``,
``+sources.NAME.path=...``); besides Hydra's grammar, ``spark.conf.<any.spark.key>=<value>`` sets a Spark property
verbatim (dots in the key are kept). ``--cfg`` prints the composed config and exits; ``--help`` prints usage.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from mixlake.config import ConfigError, s3_config, spark_config

log = logging.getLogger("mixlake")

USAGE = """usage: python jobs/{job}.py [key=value ...] [--cfg] [--help]

Hydra overrides, for example:
  lake=/data/lake                         where Delta tables (and MDS, report) go
  +sources.web.path='/data/web/*.jsonl.gz' +sources.web.format=jsonl
  sample.enabled=false                    do not use the built-in sample corpus
  stages=[ingest]                         (pipeline.py) which stages to run, in order
  spark.master=local[4]  spark.conf.spark.sql.shuffle.partitions=64
"""


def split_spark_conf(overrides: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Take ``spark.conf.<key>=<value>`` overrides out (their keys contain dots Hydra would nest)."""
    rest, conf = [], {}
    for o in overrides:
        key = o.lstrip("+~")
        if key.startswith("spark.conf.") and "=" in key:
            k, v = key[len("spark.conf."):].split("=", 1)
            conf[k] = v
        elif key.startswith("spark.master=") and not key.endswith(("'", '"')):
            # local[4] is not valid Hydra grammar unquoted; accept it as users write it for spark-submit.
            rest.append(o.split("=", 1)[0] + "='" + key.split("=", 1)[1] + "'")
        else:
            rest.append(o)
    return rest, conf


def load_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose the config; raise :class:`ConfigError` naming the key on any problem."""
    rest, spark_conf = split_spark_conf(overrides)
    try:
        with initialize_config_module(config_module="mixlake.conf", version_base=None):
            cfg = compose(config_name=config_name, overrides=list(rest))
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(str(e).strip()) from e
    with open_dict(cfg):
        for k, v in spark_conf.items():
            cfg.spark.conf[k] = v
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"missing required config value '{missing[0]}'")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(str(e).strip()) from e
    return cfg


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("py4j", "urllib3", "trafilatura", "htmldate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(job: str, argv: Sequence[str] | None = None) -> int:
    """Run one stage (``job`` = its name) or the pipeline (``job='pipeline'``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print(USAGE.format(job=job))
        return 0
    print_cfg = "--cfg" in argv
    argv = [a for a in argv if a not in ("--cfg", "job")]
    _setup_logging()
    try:
        cfg = load_config(argv)
        if print_cfg:
            print(OmegaConf.to_yaml(cfg))
            return 0
        spark_cfg = spark_config(cfg)
        s3 = s3_config(cfg)
    except ConfigError as e:
        print(f"mixlake: config error: {e}", file=sys.stderr)
        return 2
    from mixlake.pipeline import run_pipeline
    from mixlake.spark import get_spark

    t0 = time.time()
    spark = get_spark(spark_cfg, s3)
    import mixlake

    log.info("mixlake %s from %s on %s", mixlake.__version__, os.path.dirname(mixlake.__file__),
             spark.sparkContext.master)
    try:
        run_pipeline(spark, cfg, only=None if job == "pipeline" else [job])
    except ConfigError as e:
        print(f"mixlake: config error: {e}", file=sys.stderr)
        return 2
    log.info("done in %.1fs", time.time() - t0)
    return 0
