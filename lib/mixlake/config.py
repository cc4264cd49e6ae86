"""Typed configuration: dataclasses mirrored by the Hydra groups in ``conf/``.

Hydra composes a ``DictConfig``; every stage turns its part into one of these dataclasses with :func:`to_dataclass`,
which fails fast with a :class:`ConfigError` naming the full key (``sources.web.format``) on an unknown key, a
missing required value (``???``) or a value of the wrong type. Library code only ever sees the dataclasses (plain
Python objects, safe to capture in UDF closures), never a ``DictConfig``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mixlake.storage import S3Config, is_s3


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


SOURCE_FORMATS = ("jsonl", "parquet", "text", "warc", "wet")


@dataclass(frozen=True)
class SourceConfig:
    """One input source (``sources.<name>``)."""

    name: str
    path: str
    format: str
    text_field: str = "text"
    id_field: str | None = "id"
    url_field: str | None = "url"
    # text format only: a regular expression matched against whole lines that separates documents;
    # null means one document per file.
    separator: str | None = None
    # warc/wet: which HTML extractor turns responses into text (resiliparse | trafilatura).
    html_extractor: str = "resiliparse"
    # warc/wet: quarantine records whose WARC-Block-Digest fails or cannot be checked (truncated records).
    verify_digests: bool = True
    # lower number = preferred when dedup picks a cluster representative.
    priority: int = 100
    # false: the quality rules do not apply to this source (e.g. code is not prose).
    quality: bool = True


@dataclass(frozen=True)
class IngestConfig:
    """``ingest`` group: how raw files become the ``documents`` and ``quarantine`` tables."""

    max_raw_bytes: int = 4096  # bytes of a bad record kept verbatim in ``quarantine.raw``
    batch_rows: int = 2000  # rows per Arrow batch handed back from a reader task
    max_tasks: int = 4096  # upper bound on reader tasks (files are grouped beyond this)
    parquet_rows_per_task: int = 100_000  # parquet files are split by row groups into tasks of about this many rows


@dataclass(frozen=True)
class SparkConfig:
    """``spark`` group: the session factory's settings (ignored where a session already exists)."""

    master: str = "local[2]"
    app_name: str = "mixlake"
    driver_memory: str = "4g"
    ivy: str | None = None
    packages: list[str] = field(default_factory=lambda: ["io.delta:delta-spark_4.1_2.13:4.4.0"])
    nlp: bool = False
    nlp_package: str = "com.johnsnowlabs.nlp:spark-nlp_2.13:7.0.0"
    s3: bool | None = None  # add Hadoop S3A (s3_package); null: when the lake, mds.root or a source is on S3
    s3_package: str = "org.apache.hadoop:hadoop-aws:3.4.2"  # must match the Hadoop inside pyspark (3.4.2)
    log_level: str = "WARN"
    conf: dict[str, str] = field(default_factory=dict)


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def plain(node: Any) -> Any:
    """A ``DictConfig``/``ListConfig`` (or anything) as plain Python containers, interpolations resolved."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=False)
    return node


def to_dataclass(cls: type, node: Any, key: str, **extra: Any) -> Any:
    """Build dataclass ``cls`` from config ``node`` found at ``key``; fail naming the key on any problem."""
    if node is None:
        node = {}
    if isinstance(node, DictConfig):
        for k in node:
            if OmegaConf.is_missing(node, k):
                raise ConfigError(f"missing required config value '{key}.{k}'")
    values = plain(node)
    if not isinstance(values, dict):
        raise ConfigError(f"config key '{key}' must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key '{key}.{unknown[0]}' (allowed under '{key}': {', '.join(sorted(names - set(extra)))})"
        )
    kwargs: dict[str, Any] = dict(extra)
    for f in dataclasses.fields(cls):
        if f.name in extra:
            continue
        if f.name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"missing required config value '{key}.{f.name}'")
            continue
        v = values[f.name]
        tp = hints[f.name]
        wants_float = tp is float or float in typing.get_args(tp)
        if wants_float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if typing.get_origin(tp) is dict and isinstance(v, dict):
            val_t = (typing.get_args(tp) or (Any, Any))[1]
            if val_t is float:
                v = {k: float(x) if isinstance(x, int) and not isinstance(x, bool) else x for k, x in v.items()}
        if not _type_ok(v, tp):
            raise ConfigError(f"config key '{key}.{f.name}' has value {v!r}, expected {tp}")
        kwargs[f.name] = v
    return cls(**kwargs)


def source_configs(cfg: DictConfig) -> list[SourceConfig]:
    """All declared sources (``sources.*`` plus the built-in sample's when ``sample.enabled``), validated."""
    from mixlake.sample.generate import sample_sources  # local import: sample depends on config

    declared: dict[str, Any] = {}
    if cfg.get("sample") is not None and cfg.sample.get("enabled", False):
        declared.update(sample_sources(cfg))
    for name, node in (cfg.get("sources") or {}).items():
        if name in declared:
            raise ConfigError(f"source name 'sources.{name}' collides with a built-in sample source; rename it")
        declared[str(name)] = node
    out = []
    for name, node in declared.items():
        sc = to_dataclass(SourceConfig, node, f"sources.{name}", name=name)
        if sc.format not in SOURCE_FORMATS:
            raise ConfigError(
                f"config key 'sources.{name}.format' has unknown format {sc.format!r}; "
                f"expected one of {', '.join(SOURCE_FORMATS)}"
            )
        if sc.html_extractor not in ("resiliparse", "trafilatura"):
            raise ConfigError(f"config key 'sources.{name}.html_extractor' must be resiliparse or trafilatura")
        out.append(sc)
    if not out:
        raise ConfigError("no sources: declare one with +sources.NAME.path=... +sources.NAME.format=... "
                          "or enable the built-in sample (sample.enabled=true)")
    return sorted(out, key=lambda s: s.name)


def declares_sources(cfg: DictConfig) -> bool:
    """Whether any source is declared (``sources.*`` or the enabled sample)."""
    sample_on = cfg.get("sample") is not None and bool(cfg.sample.get("enabled", False))
    return sample_on or bool(cfg.get("sources"))


def s3_config(cfg: DictConfig) -> S3Config:
    """``storage.s3`` as a typed config."""
    node = cfg.get("storage")
    return to_dataclass(S3Config, plain(node.get("s3")) if node is not None else {}, "storage.s3")


def uses_s3(cfg: DictConfig) -> bool:
    """Whether the lake, the MDS root or any declared source lives on S3."""
    paths = [str(cfg.get("lake") or ""), str((cfg.get("mds") or {}).get("root") or "")]
    paths += [str((v or {}).get("path") or "") for v in (plain(cfg.get("sources")) or {}).values()]
    return any(is_s3(p) for p in paths)


def spark_config(cfg: DictConfig) -> SparkConfig:
    """``spark`` as a typed config, with ``spark.s3: null`` decided from the configured paths."""
    sc = to_dataclass(SparkConfig, cfg.spark, "spark")
    if sc.s3 is None:
        sc = dataclasses.replace(sc, s3=uses_s3(cfg))
    return sc
