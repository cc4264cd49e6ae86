"""``databricks.yml`` checked offline: the job's fields against databricks-sdk's ``JobSettings`` (unknown keys are
dropped by ``from_dict``, so a round trip that loses a key means a typo), files it names exist, its Hydra parameters
compose into a valid mixlake config, and on Databricks the session factory reuses the session and adds no jars."""

from __future__ import annotations

import re
from typing import Any

import yaml

from conftest import REPO
from mixlake.config import SparkConfig
from mixlake.config import compose as load_config
from mixlake.spark import BASE_CONF, get_spark
from mixlake.stages import stage_validator


def bundle() -> dict[str, Any]:
    return yaml.safe_load((REPO / "databricks.yml").read_text())


def substitute(obj: Any, variables: dict[str, Any]) -> Any:
    """``${var.x}`` → the variable's default, ``${bundle.target}`` → dev (what ``bundle validate`` does)."""
    if isinstance(obj, dict):
        return {k: substitute(v, variables) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, variables) for v in obj]
    if isinstance(obj, str):
        whole = re.fullmatch(r"\$\{var\.(\w+)\}", obj)
        if whole:
            return variables[whole.group(1)]
        obj = re.sub(r"\$\{var\.(\w+)\}", lambda m: str(variables[m.group(1)]), obj)
        return obj.replace("${bundle.target}", "dev")
    return obj


def lost_keys(given: Any, round_trip: Any, path: str = "") -> list[str]:
    if isinstance(given, dict):
        if not isinstance(round_trip, dict):
            return [path or "<root>"]
        out = []
        for k, v in given.items():
            if k not in round_trip:
                out.append(f"{path}.{k}")
            else:
                out += lost_keys(v, round_trip[k], f"{path}.{k}")
        return out
    if isinstance(given, list):
        return [x for i, g in enumerate(given) for x in lost_keys(g, round_trip[i], f"{path}[{i}]")]
    return []


def test_bundle_job_matches_the_jobs_api_schema():
    from databricks.sdk.service.jobs import JobSettings

    doc = bundle()
    assert doc["bundle"]["name"] == "mixlake"
    variables = {k: v["default"] for k, v in doc["variables"].items()}
    jobs = doc["resources"]["jobs"]
    assert jobs
    for name, job in jobs.items():
        job = substitute(job, variables)
        settings = JobSettings.from_dict(job)
        assert lost_keys(job, settings.as_dict()) == [], name
        assert settings.tasks and all(t.spark_python_task or t.python_wheel_task for t in settings.tasks)
    assert set(doc["targets"]) >= {"dev", "prod"}


def test_bundle_tasks_run_real_files_with_valid_overrides():
    doc = bundle()
    variables = {k: v["default"] for k, v in doc["variables"].items()}
    job = substitute(doc["resources"]["jobs"]["mixlake_pipeline"], variables)
    (task,) = job["tasks"]
    spt = task["spark_python_task"]
    assert (REPO / spt["python_file"]).is_file()
    cfg = load_config(spt["parameters"])  # Hydra overrides as Databricks passes them (a list of strings)
    for stage in cfg.stages:
        stage_validator(stage)(cfg)
    assert cfg.lake == variables["lake"] and cfg.spark.conf["spark.sql.shuffle.partitions"] == "64"
    # the wheel `make dist` builds, and the Spark NLP jar as a Maven library (not through spark.jars.packages)
    libs = task["libraries"]
    assert {"whl": "./dist/*.whl"} in libs
    assert {"maven": {"coordinates": SparkConfig().nlp_package}} in libs
    assert "pip wheel --no-deps -w dist ." in doc["artifacts"]["mixlake_wheel"]["build"]
    assert "pip wheel --no-deps -q -w dist ." in (REPO / "Makefile").read_text()
    cluster = job["job_clusters"][0]["new_cluster"]
    assert cluster["spark_conf"]["spark.serializer"] == BASE_CONF["spark.serializer"]
    assert cluster["spark_conf"]["spark.kryoserializer.buffer.max"] == BASE_CONF["spark.kryoserializer.buffer.max"]


def test_on_databricks_the_existing_session_is_reused_without_jars(spark, monkeypatch):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.0")
    jars_before = spark.sparkContext.getConf().get("spark.jars")
    packages_before = spark.sparkContext.getConf().get("spark.jars.packages")
    got = get_spark(SparkConfig(nlp=True, s3=True, conf={"spark.sql.shuffle.partitions": "4"}))
    assert got is spark
    assert got.sparkContext.getConf().get("spark.jars") == jars_before
    assert got.sparkContext.getConf().get("spark.jars.packages") == packages_before
    assert got.conf.get("spark.hadoop.fs.s3.impl", None) is None  # Databricks keeps its own S3 filesystem
