"""``python -m mixlake.submit jobs/<stage>.py key=value ...``: spark-submit with mixlake's JVM jars and interpreter.

Under spark-submit the JVM starts before Python, so jars must be on the command line. This adds ``--jars`` from the
ivy manifest ``make setup`` wrote (or ``--packages`` when there is none), the Delta session settings and
``spark.pyspark.python``; any spark-submit option you pass before the job file wins (e.g. ``--master``).
"""

from __future__ import annotations

import os
import sys

from mixlake.config import SparkConfig
from mixlake.spark import DELTA_CATALOG, DELTA_EXTENSION, default_ivy_dir, jvm_packages, resolved_jars


def submit_args(cfg: SparkConfig | None = None) -> list[str]:
    cfg = cfg or SparkConfig()
    pkgs = jvm_packages(cfg)
    ivy = default_ivy_dir()
    jars = resolved_jars(ivy, pkgs) if ivy else None
    args = ["--jars", ",".join(jars)] if jars else ["--packages", ",".join(pkgs)]
    if not jars and ivy:
        args += ["--conf", f"spark.jars.ivy={ivy}"]
    return [*args, "--conf", f"spark.sql.extensions={DELTA_EXTENSION}",
            "--conf", f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
            "--conf", f"spark.pyspark.python={os.environ.get('PYSPARK_PYTHON', sys.executable)}"]


def job_spark_config(argv: list[str]) -> SparkConfig:
    """The job's ``spark`` config from the overrides after the job file (decides e.g. whether S3A is needed)."""
    from mixlake.config import ConfigError, compose

    job = next((i for i, a in enumerate(argv) if a.endswith(".py")), None)
    if job is None:
        return SparkConfig()
    try:
        return compose([a for a in argv[job + 1:] if not a.startswith("-")]).spark
    except ConfigError:
        return SparkConfig()  # the job itself reports the config error


def main(argv: list[str]) -> int:
    import pyspark

    spark_submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    os.execv(spark_submit, [spark_submit, *submit_args(job_spark_config(argv)), *argv])
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
