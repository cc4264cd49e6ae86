"""The one place a SparkSession is obtained.

``get_spark`` reuses whatever session already exists (Databricks, a notebook, spark-submit) and only builds one when
none does. A built session runs ``local[2]`` by default, with Delta's SQL extension and catalog, Kryo (what Spark NLP
needs), the project interpreter as ``PYSPARK_PYTHON`` and JVM packages resolved through a fixed ivy directory that
``make setup`` filled, so that later starts do not touch the network.

Library code never calls this: stages receive a session from the job entry point.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from mixlake.config import SparkConfig
from mixlake.storage import S3Config, hadoop_s3a_conf

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Settings every session we build gets; users override any of them with spark.conf.<key>=<value>.
BASE_CONF: dict[str, str] = {
    "spark.sql.extensions": DELTA_EXTENSION,
    "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
    "spark.kryoserializer.buffer.max": "2000M",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Delta: no deletion vectors/column mapping so that the `deltalake` package reads our tables with pyarrow.
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
}


def project_root() -> Path | None:
    """The source checkout this package was installed from (editable installs), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "setup.py").exists() and (parent / "conf").is_dir():
            return parent
    return None


def default_ivy_dir() -> str | None:
    env = os.environ.get("MIXLAKE_IVY")
    if env:
        return str(Path(env).resolve())
    root = project_root()
    if root is not None:
        return str(root / ".ivy")
    return None


# Python workers of local sessions start from it: PySpark's daemon without the spark-core jar and the duplicate
# pyspark.zip on sys.path, which cost ~70 ms per task (see the module's docstring).
WORKER_DAEMON = "mixlake.worker_daemon"


# The JVM a local session starts holds the driver and the executors: the parallel collector instead of G1, whose
# concurrent marking threads and write barriers a batch job does not need. Measured on the scale-20 pipeline (2 cores,
# per-thread CPU from /proc, 2026-12-07): the collector threads used ~17 CPU-s per run with G1 (its concurrent
# threads ~9 of them) and ~7 with the parallel collector, of ~350; whole-run wall time moved less than this machine's
# run-to-run noise (±5-10%). It goes into spark.driver.defaultJavaOptions (which Spark prepends to
# spark.driver.extraJavaOptions), so a user's own JVM options still apply; one that picks a collector itself keeps it
# (two collector flags would stop the JVM from starting).
LOCAL_GC_OPTION = "-XX:+UseParallelGC"
GC_FLAG = re.compile(r"-XX:\+Use\w*GC\b")


def local_jvm_options(user_conf: dict[str, str], class_archive: str | None = None) -> dict[str, str]:
    """The JVM options mixlake adds for a local session it launches, given the user's Spark properties: the parallel
    collector (unless the user picks one) and the class archive (:func:`class_archive_path`), when there is one.
    A user's own ``spark.driver.defaultJavaOptions`` replaces both."""
    if "spark.driver.defaultJavaOptions" in user_conf:
        return {}
    opts = []
    if not GC_FLAG.search(user_conf.get("spark.driver.extraJavaOptions", "")):
        opts.append(LOCAL_GC_OPTION)
    if class_archive:
        opts.append(java_option(f"-XX:SharedArchiveFile={class_archive}"))
    return {"spark.driver.defaultJavaOptions": " ".join(opts)} if opts else {}


def java_option(opt: str) -> str:
    # Spark splits Java options on spaces, honouring double quotes
    return f'"{opt}"' if " " in opt else opt


# Class-data sharing (JEP 310 and JEP 350, dynamic archives): a local session's JVM maps the ~16,000 classes a mixlake
# run loads (Spark, Scala, Delta, Arrow, Jackson, ...) from one archive instead of reading, parsing and verifying them
# from the jars again in every process. `make setup` dumps it (`python -m mixlake.class_archive`: the built-in
# pipeline on a tiny sample, run with -XX:ArchiveClassesAtExit) next to the resolved jars. Measured here (2 cores,
# 2026-12-08): session start 9.4-10.6 -> 6.2-6.6 s, and the first Delta write and read ~2.5 s less. The JVM checks
# the archive against the classpath and each jar (size and time); one that no longer matches is ignored with a
# one-line warning and classes load from the jars as before. The name is keyed by the java binary and PySpark's
# version, so an upgrade of either looks for a new archive rather than printing that warning.
CLASS_ARCHIVE_PREFIX = "mixlake-classes-"


def _java_binary() -> str | None:
    """The java PySpark launches (as spark-class picks it: $JAVA_HOME/bin/java, else the one on PATH)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(java) if java and os.path.exists(java) else None


def class_archive_path(ivy: str) -> Path | None:
    """Where the class archive of this Java and PySpark lives in ``ivy`` (None: no java found)."""
    java = _java_binary()
    if java is None:
        return None
    key = hashlib.sha256("\0".join([java, str(os.stat(java).st_mtime_ns), pyspark.__version__,
                                     os.path.dirname(pyspark.__file__)]).encode()).hexdigest()[:16]
    return Path(ivy) / f"{CLASS_ARCHIVE_PREFIX}{key}.jsa"


def existing_class_archive(cfg: SparkConfig, ivy: str | None) -> str | None:
    """The class archive a local session built from ``cfg`` uses: present and ``spark.class_archive`` on."""
    if not (cfg.class_archive and ivy):
        return None
    path = class_archive_path(ivy)
    return str(path) if path is not None and path.is_file() else None


def local_workers_import(module: str) -> bool:
    """Whether the interpreter local Python workers run (``PYSPARK_PYTHON``) can import ``module`` with this process's
    environment — false when mixlake is only on the driver's ``sys.path``. Costs one interpreter start (~50 ms)."""
    python = os.environ.get("PYSPARK_PYTHON", sys.executable)
    try:
        return subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def jvm_already_launched() -> bool:
    """True under spark-submit / pyspark shell: the JVM (and its classpath) exists before Python runs."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def jvm_packages(cfg: SparkConfig) -> list[str]:
    pkgs = list(cfg.packages)
    if cfg.nlp:
        pkgs.append(cfg.nlp_package)
    if cfg.s3:
        pkgs.append(cfg.s3_package)
    return pkgs


def get_spark(cfg: SparkConfig | None = None, s3: S3Config | None = None) -> SparkSession:
    """Return the active session, or build one from ``cfg`` (see module docstring).

    With ``cfg.s3`` a session built here also gets hadoop-aws and the S3A settings from ``s3`` (endpoint,
    credentials). An existing session (Databricks: its own S3 filesystem and credentials) gets neither.
    """
    cfg = cfg or SparkConfig()
    active = SparkSession.getActiveSession()
    if active is None and on_databricks():
        # Databricks owns jars, master and Delta; never add packages there.
        active = SparkSession.builder.getOrCreate()
    if active is not None:
        _apply_runtime_conf(active, cfg)
        _check_delta(active)
        return active
    s3a = hadoop_s3a_conf(s3 or S3Config()) if cfg.s3 else {}
    user_conf = {**BASE_CONF, **s3a, **{k: str(v) for k, v in cfg.conf.items()}}
    if jvm_already_launched():
        # spark-submit: master and jars came from the command line; static confs can still be set here because the
        # SparkContext is created by this call.
        builder = SparkSession.builder.appName(cfg.app_name)
        for k, v in user_conf.items():
            builder = builder.config(k, v)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel(cfg.log_level)
        _check_delta(spark)
        return spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if cfg.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    builder = builder.config("spark.driver.memory", cfg.driver_memory)
    if cfg.master.startswith("local") and local_workers_import(WORKER_DAEMON):
        builder = builder.config("spark.python.daemon.module", WORKER_DAEMON)  # spark.conf.* can still override it
    pkgs = jvm_packages(cfg)
    ivy = cfg.ivy or default_ivy_dir()
    if cfg.master.startswith("local"):
        for k, v in local_jvm_options(user_conf, existing_class_archive(cfg, ivy)).items():
            builder = builder.config(k, v)
    jars = resolved_jars(ivy, pkgs) if ivy else None
    if jars:
        # Resolved before (make setup): hand Spark the jar files, no ivy resolution, no network.
        builder = builder.config("spark.jars", ",".join(jars))
    elif pkgs:
        builder = builder.config("spark.jars.packages", ",".join(pkgs))
        if ivy:
            builder = builder.config("spark.jars.ivy", ivy)
    for k, v in user_conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.log_level)
    _check_delta(spark)
    if ivy and pkgs and not jars:
        _write_manifest(spark, ivy, pkgs)
    return spark


MANIFEST = "mixlake-jars.json"


def _manifest_sets(ivy: str) -> list[dict]:
    """``[{"packages": [...], "jars": [...]}, ...]``: one entry per package set resolved so far."""
    path = Path(ivy) / MANIFEST
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return list(data.get("sets", [data] if "packages" in data else []))


def resolved_jars(ivy: str, packages: list[str]) -> list[str] | None:
    """Jar files an earlier resolution of exactly ``packages`` produced in ``ivy`` (all must still exist)."""
    for entry in _manifest_sets(ivy):
        jars = entry.get("jars", [])
        if sorted(entry.get("packages", [])) == sorted(packages) and jars and all(
                Path(j.removeprefix("file://")).exists() for j in jars):
            return list(jars)
    return None


def _write_manifest(spark: SparkSession, ivy: str, packages: list[str]) -> None:
    jars = [j for j in (spark.sparkContext.getConf().get("spark.jars") or "").split(",") if j]
    if jars:
        Path(ivy).mkdir(parents=True, exist_ok=True)
        sets = [e for e in _manifest_sets(ivy) if sorted(e.get("packages", [])) != sorted(packages)]
        sets.append({"packages": sorted(packages), "jars": jars})
        (Path(ivy) / MANIFEST).write_text(json.dumps({"sets": sets}, indent=1))


def _apply_runtime_conf(spark: SparkSession, cfg: SparkConfig) -> None:
    for k, v in cfg.conf.items():
        try:
            spark.conf.set(k, str(v))
        except Exception as e:  # static confs (e.g. spark.executor.memory) cannot change on a live session
            log.warning("cannot set %s on the existing session (%s); set it at submit time", k, e)


def _check_delta(spark: SparkSession) -> None:
    try:
        spark.sparkContext._jvm.java.lang.Class.forName(  # type: ignore[union-attr]
            DELTA_EXTENSION, True, spark.sparkContext._jvm.Thread.currentThread().getContextClassLoader()  # type: ignore[union-attr]
        )
    except Exception as e:
        raise RuntimeError(
            "Delta Lake classes are not on this Spark session's classpath. "
            "Under spark-submit pass them at submit time:\n"
            f"  spark-submit --packages {','.join(SparkConfig().packages)} "
            f"--conf spark.sql.extensions={DELTA_EXTENSION} "
            f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG} jobs/<stage>.py ...\n"
            "(or use bin/mixlake-submit, which adds them)."
        ) from e


def resolve(argv: list[str]) -> int:
    """``python -m mixlake.spark [overrides]``: resolve the JVM packages into the ivy dir and smoke-test Delta."""
    import tempfile

    from mixlake.config import compose

    cfg = compose(argv).spark
    ivy = cfg.ivy or default_ivy_dir()
    if ivy and resolved_jars(ivy, jvm_packages(cfg)):
        print(f"already resolved: {', '.join(jvm_packages(cfg))} in {ivy}")
        return 0
    spark = get_spark(cfg)
    with tempfile.TemporaryDirectory() as d:
        spark.range(3).write.format("delta").save(f"{d}/t")
        n = spark.read.format("delta").load(f"{d}/t").count()
    print(f"resolved {', '.join(jvm_packages(cfg))} into {ivy}; Delta smoke test read {n} rows")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(resolve(sys.argv[1:]))
