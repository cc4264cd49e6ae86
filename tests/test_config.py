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


def test_s3_paths_switch_on_hadoop_aws_and_s3a_settings(monkeypatch):
    from mixlake.config import s3_config, spark_config
    from mixlake.spark import jvm_packages
    from mixlake.storage import hadoop_s3a_conf, streaming_uri

    assert not spark_config(compose()).s3
    assert "org.apache.hadoop:hadoop-aws:3.4.2" not in jvm_packages(spark_config(compose()))
    cfg = compose("lake=s3a://bucket/lake", "storage.s3.endpoint=http://127.0.0.1:9000",
                  "storage.s3.secret_key=sk-x", "storage.s3.access_key=ak")
    assert spark_config(cfg).s3 and "org.apache.hadoop:hadoop-aws:3.4.2" in jvm_packages(spark_config(cfg))
    assert spark_config(compose("+sources.w.path=s3://b/w/*.jsonl", "+sources.w.format=jsonl")).s3
    s3 = s3_config(cfg)
    conf = hadoop_s3a_conf(s3)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3.impl"].endswith("S3AFileSystem")
    assert "sk-x" not in repr(s3)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    assert s3_config(compose()).resolved().secret_key == "from-env"
    assert streaming_uri("s3a://b/lake/mds") == "s3://b/lake/mds"
    with pytest.raises(ConfigError, match=r"storage\.s3\.regon"):
        s3_config(compose("+storage.s3.regon=x"))
