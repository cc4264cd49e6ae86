import subprocess
import sys

import pytest

from conftest import REPO, compose
from mixlake.cli import split_spark_conf
from mixlake.config import ConfigError, IngestConfig, SparkConfig, source_configs, to_dataclass


def test_defaults_compose():
    cfg = compose()
    assert cfg.lake == "./lake"
    assert list(cfg.stages)[:3] == ["ingest", "quality", "dedup"] and list(cfg.stages)[-1] == "report"
    assert cfg.sample.enabled is True
    assert cfg.sample.dir == "./lake/sample"
    spark = to_dataclass(SparkConfig, cfg.spark, "spark")
    assert spark.master == "local[2]"


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match="lakee"):
        compose("lakee=/x")


def test_spark_conf_override_keeps_dotted_key():
    rest, conf = split_spark_conf(["lake=/x", "spark.conf.spark.sql.shuffle.partitions=64"])
    assert rest == ["lake=/x"]
    assert conf == {"spark.sql.shuffle.partitions": "64"}
    cfg = compose("spark.conf.spark.sql.shuffle.partitions=64", "spark.master=local[1]")
    sc = to_dataclass(SparkConfig, cfg.spark, "spark")
    assert sc.conf["spark.sql.shuffle.partitions"] == "64"
    assert sc.master == "local[1]"


def test_source_added_from_command_line(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "hi"}\n')
    cfg = compose("sample.enabled=false", f"+sources.mine.path={tmp_path}/*.jsonl", "+sources.mine.format=jsonl")
    (src,) = source_configs(cfg)
    assert (src.name, src.format, src.text_field) == ("mine", "jsonl", "text")


def test_unknown_format_names_the_key(tmp_path):
    cfg = compose("sample.enabled=false", f"+sources.x.path={tmp_path}", "+sources.x.format=csv")
    with pytest.raises(ConfigError, match=r"sources\.x\.format"):
        source_configs(cfg)


def test_missing_path_names_the_key():
    cfg = compose("sample.enabled=false", "+sources.x.format=jsonl")
    with pytest.raises(ConfigError, match=r"sources\.x\.path"):
        source_configs(cfg)


def test_unknown_source_field_names_the_key(tmp_path):
    cfg = compose("sample.enabled=false", f"+sources.x.path={tmp_path}", "+sources.x.format=jsonl",
                  "+sources.x.textfield=body")
    with pytest.raises(ConfigError, match=r"sources\.x\.textfield"):
        source_configs(cfg)


def test_no_sources_is_an_error():
    with pytest.raises(ConfigError, match="no sources"):
        source_configs(compose("sample.enabled=false"))


def test_wrong_type_names_the_key():
    cfg = compose("ingest.max_raw_bytes=lots")
    with pytest.raises(ConfigError, match=r"ingest\.max_raw_bytes"):
        to_dataclass(IngestConfig, cfg.ingest, "ingest")


def test_job_cli_fails_fast_with_exit_code_2():
    p = subprocess.run([sys.executable, str(REPO / "jobs" / "ingest.py"), "no_such_key=1"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2
    assert "no_such_key" in p.stderr


def test_job_cli_prints_config_without_spark():
    p = subprocess.run([sys.executable, str(REPO / "jobs" / "pipeline.py"), "lake=/tmp/elsewhere", "--cfg"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "lake: /tmp/elsewhere" in p.stdout
    assert "dir: /tmp/elsewhere/sample" in p.stdout
