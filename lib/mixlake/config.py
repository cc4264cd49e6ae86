"""Typed configuration, composed and validated once.

Every group in ``conf/`` is backed by a dataclass; the root :class:`MixlakeConfig` types the whole tree and is
registered in Hydra's ``ConfigStore`` as ``mixlake_schema``, the first entry of ``conf/config.yaml``'s defaults list
(the YAML files stay the defaults users read and override). :func:`compose` runs Hydra's Compose API, so a wrong type
(``dedup.bands=abc``), an unknown key or a missing required value fails at compose time with the key in the message,
before any Spark session starts; then it returns the config as plain dataclasses (``OmegaConf.to_object``), each
section's ``__post_init__`` having checked its values. Stages receive that object; library code under
``lib/mixlake/<stage>/`` receives its section — never a ``DictConfig``.

Compose time also settles what used to be re-derived per stage: the sample's sources join ``sources`` when
``sample.enabled``; the sample's demo budget applies when no budget is set; ``mds.root`` defaults to
``${lake}/mds``; ``spark.s3`` is decided from the configured paths; the mixture plan's budget fields come from
``model``, ``budget``, ``tokens_per_param`` and ``ladder``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from mixlake.decontam.config import DecontamConfig, EvalSetConfig
from mixlake.dedup.config import DedupConfig
from mixlake.delta import lake_root
from mixlake.errors import ConfigError
from mixlake.lock import LockConfig
from mixlake.mds.verify import VerifyConfig
from mixlake.mds.write import MDSConfig
from mixlake.mixture.plan import MixtureConfig
from mixlake.quality.model_config import QualityModelConfig
from mixlake.quality.rules import QualityConfig
from mixlake.semdedup.config import SemDedupConfig
from mixlake.spans.spans import SpansConfig
from mixlake.storage import S3Config, is_s3
from mixlake.tokens.tokenizer import TokenizerConfig

__all__ = ["ConfigError", "MixlakeConfig", "compose", "split_spark_conf"]

log = logging.getLogger(__name__)

SOURCE_FORMATS = ("jsonl", "parquet", "text", "warc", "wet")


@dataclass
class SourceConfig:
    """One input source (``sources.<name>``)."""

    path: str  # a glob (local, dbfs:/, /Volumes/..., s3://)
    format: str  # jsonl | parquet | text | warc | wet
    name: str = ""  # filled from the key sources.<name>
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


@dataclass
class IngestConfig:
    """``ingest`` group: how raw files become the ``documents`` and ``quarantine`` tables."""

    max_raw_bytes: int = 4096  # bytes of a bad record kept verbatim in ``quarantine.raw``
    batch_rows: int = 2000  # rows per Arrow batch handed back from a reader task
    max_tasks: int = 4096  # upper bound on reader tasks (files are grouped beyond this)
    task_bytes: int = 64 << 20  # files are grouped into Spark tasks of about this many input bytes (at least two
    # tasks per core): a Python task costs ~70 ms of fixed overhead, so one task per small file is slow
    parquet_rows_per_task: int = 100_000  # parquet files are split by row groups into tasks of about this many rows
    max_doc_bytes: int = 10_000_000  # a longer record is quarantined as ``too_large`` (its prefix kept)
    batch_bytes: int = 64 << 20  # a reader task hands back a batch once its texts reach this many bytes
    keep_removed_sources: bool = False  # keep the rows of sources no longer configured (else ingest removes them)

    def __post_init__(self) -> None:
        for key in ("max_raw_bytes", "batch_rows", "max_tasks", "parquet_rows_per_task", "max_doc_bytes",
                    "batch_bytes", "task_bytes"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"ingest.{key} must be > 0, got {getattr(self, key)}")


@dataclass
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
    class_archive: bool = True  # local sessions map JVM classes from the archive `make setup` dumps (mixlake.spark)
    conf: dict[str, str] = field(default_factory=dict)



@dataclass
class SampleConfig:
    """``sample`` group. Document counts are multiplied by ``scale``."""

    enabled: bool = True
    seed: int = 1234
    dir: str = "./lake/sample"
    scale: float = 1.0
    web_docs: int = 3000
    web_shards: int = 4
    wiki_docs: int = 600
    code_docs: int = 300
    books_docs: int = 24
    crawl_pages: int = 120
    vocab_size: int = 20000
    exact_dup_fraction: float = 0.05
    near_dup_pairs: int = 240
    boilerplate_docs: int = 300
    low_quality_fraction: float = 0.04
    bad_records: int = 12
    budget_tokens: float = 5.0e6  # the mix stage plans this when no budget is configured
    eval_items: int = 18  # synthetic eval items, some planted into web/code documents (decontam's ground truth)

    def sources(self) -> dict[str, SourceConfig]:
        """The sources the sample provides (added to ``sources`` at compose time when ``enabled``)."""
        d = self.dir.rstrip("/")
        return {
            "web": SourceConfig(path=f"{d}/web/*.jsonl.gz", format="jsonl", priority=50, name="web"),
            "wiki": SourceConfig(path=f"{d}/wiki/*.parquet", format="parquet", priority=10, name="wiki"),
            "code": SourceConfig(path=f"{d}/code/*.jsonl.zst", format="jsonl", priority=20, quality=False,
                                 name="code"),
            "books": SourceConfig(path=f"{d}/books/*.txt", format="text", id_field=None, url_field=None,
                                  priority=30, name="books"),
            "crawl": SourceConfig(path=f"{d}/crawl/*.warc.gz", format="warc", priority=60, name="crawl"),
        }

    def eval_sets(self) -> dict[str, EvalSetConfig]:
        """The eval set the sample provides (added to ``decontam.evals`` at compose time when ``enabled``)."""
        return {"sample_eval": EvalSetConfig(path=f"{self.dir.rstrip('/')}/eval/sample_eval.jsonl",
                                             fields=["question", "answer"], id_field="id", name="sample_eval")}

@dataclass
class EvalConfig:
    """``eval`` group: scoring dedup against a gold file (``eval_dedup``)."""

    gold: str | None = None  # null: the sample's ground_truth.json when sample.enabled
    threshold: float | None = None  # null: dedup.threshold
    max_cluster_size: int = 200  # larger predicted clusters are scored by member-representative pairs


@dataclass
class TokensConfig:
    """``tokens`` group."""

    input_table: str = "auto"
    store_ids: bool = True  # write token_ids (the ids write_mds packs instead of tokenizing again)


@dataclass
class StorageConfig:
    """``storage`` group."""

    s3: S3Config = field(default_factory=S3Config)


@dataclass
class ModelConfig:
    params: float | None = None  # N, e.g. 7e9


@dataclass
class BudgetConfig:
    flops: float | None = None  # C
    tokens: float | None = None  # D


@dataclass
class DebugConfig:
    fail_stage: str | None = None  # testing: make this stage fail (crash/resume tests)


@dataclass
class MixlakeConfig:
    """The root: ``conf/config.yaml`` and its groups."""

    lake: str = "./lake"
    stages: list[str] = field(default_factory=list)
    force: bool = False
    debug: DebugConfig = field(default_factory=DebugConfig)
    lock: LockConfig = field(default_factory=LockConfig)
    # name -> SourceConfig; typed per entry at compose time (a new entry is added with +sources.NAME.path=...)
    sources: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    tokens_per_param: float = 20.0
    ladder: list[float] = field(default_factory=list)
    spark: SparkConfig = field(default_factory=SparkConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    semdedup: SemDedupConfig = field(default_factory=SemDedupConfig)
    spans: SpansConfig = field(default_factory=SpansConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    quality_model: QualityModelConfig = field(default_factory=QualityModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    mds: MDSConfig = field(default_factory=MDSConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)

    @property
    def s3(self) -> S3Config:
        return self.storage.s3

    def source_list(self) -> list[SourceConfig]:
        """The declared sources sorted by name; an error naming the fix when there are none."""
        if not self.sources:
            raise ConfigError("no sources: declare one with +sources.NAME.path=... +sources.NAME.format=... "
                              "or enable the built-in sample (sample.enabled=true)")
        return [self.sources[k] for k in sorted(self.sources)]

    def uses_s3(self) -> bool:
        """Whether the lake, the MDS root or any declared source lives on S3."""
        return any(is_s3(p) for p in [self.lake, self.mds.root or "", *(s.path for s in self.sources.values())])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="mixlake_schema", node=MixlakeConfig)


def split_spark_conf(overrides: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Take ``spark.conf.<key>=<value>`` overrides out (their keys contain dots Hydra would nest). A value quoted as
    Hydra values are (``spark.conf.spark.driver.extraJavaOptions="-Xss4m -XX:+UseParallelGC"``) loses its quotes as
    a Hydra value would: kept, Spark's launcher would take the quoted options for one option and the JVM not start."""
    rest, conf = [], {}
    for o in overrides:
        key = o.lstrip("+~")
        if key.startswith("spark.conf.") and "=" in key:
            k, v = key[len("spark.conf."):].split("=", 1)
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            conf[k] = v
        elif key.startswith("spark.master=") and not key.endswith(("'", '"')):
            # local[4] is not valid Hydra grammar unquoted; accept it as users write it for spark-submit.
            rest.append(o.split("=", 1)[0] + "='" + key.split("=", 1)[1] + "'")
        else:
            rest.append(o)
    return rest, conf


def _error(e: Exception) -> ConfigError:
    key = getattr(e, "full_key", None)
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ConfigError(f"config key '{key}': {msg}" if key else msg)


def compose_dictconfig(overrides: Sequence[str] = (), config_name: str = "config") -> Any:
    """Hydra composition only (typed, interpolations resolved): the ``DictConfig`` ``--cfg`` prints."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    rest, spark_conf = split_spark_conf(overrides)
    _register_schema()
    try:
        with initialize_config_module(config_module="mixlake.conf", version_base=None):
            cfg = hydra_compose(config_name=config_name, overrides=list(rest))
        with open_dict(cfg):
            for k, v in spark_conf.items():
                cfg.spark.conf[k] = v
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise ConfigError(f"missing required config value '{missing[0]}'")
        OmegaConf.resolve(cfg)
    except HydraException as e:
        raise _error(e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e) from e
    except OmegaConfBaseException as e:
        raise _error(e) from e
    return cfg


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> MixlakeConfig:
    """Compose, validate and finalise the configuration (see the module docstring); :class:`ConfigError` naming the
    key on any problem."""
    from omegaconf.errors import OmegaConfBaseException

    dc = compose_dictconfig(overrides, config_name)
    _check_unknown_keys(dc, "")
    try:
        cfg = OmegaConf.to_object(dc)
    except OmegaConfBaseException as e:
        raise _error(e) from e
    assert isinstance(cfg, MixlakeConfig)
    cfg.sources = {str(name): _entry(SourceConfig, f"sources.{name}", node) for name, node in dc.sources.items()}
    cfg.decontam.evals = {str(name): _entry(EvalSetConfig, f"decontam.evals.{name}", node, name=str(name))
                          for name, node in dc.decontam.evals.items()}
    return finalize(cfg)


def _entry(cls: type, prefix: str, node: Any, **extra: Any) -> Any:
    """One entry of an open mapping (``sources.NAME``, ``decontam.evals.NAME``) typed as ``cls``."""
    from omegaconf.errors import OmegaConfBaseException

    if not OmegaConf.is_dict(node):
        raise ConfigError(f"config key '{prefix}' must be a mapping (path, format, ...)")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), node, extra)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(f"missing required config value '{prefix}.{missing[0]}'")
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        raise ConfigError(f"config key '{prefix}.{key}': {str(e).strip().splitlines()[0]}" if key else
                          f"config key '{prefix}': {str(e).strip().splitlines()[0]}") from e
    assert isinstance(obj, cls)
    return obj


def _check_unknown_keys(node: Any, path: str) -> None:
    """A key Hydra's ``+`` added under a typed section is an error too (``+storage.s3.regon=x``)."""
    tp = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(tp):
        known = {f.name for f in dataclasses.fields(tp)}
        for k in node:
            if k not in known:
                raise ConfigError(f"unknown config key '{path}{k}' (allowed under '{path.rstrip('.') or 'the root'}': "
                                  f"{', '.join(sorted(known))})")
    if OmegaConf.is_dict(node):
        for k in node:
            child = node._get_node(k)
            if OmegaConf.is_config(child):
                _check_unknown_keys(child, f"{path}{k}.")


def finalize(cfg: MixlakeConfig) -> MixlakeConfig:
    """What depends on several sections, settled once (see the module docstring)."""
    for name, src in cfg.sources.items():
        src.name = str(name)
        if src.format not in SOURCE_FORMATS:
            raise ConfigError(f"config key 'sources.{name}.format' has unknown format {src.format!r}; "
                              f"expected one of {', '.join(SOURCE_FORMATS)}")
        if src.html_extractor not in ("resiliparse", "trafilatura"):
            raise ConfigError(f"config key 'sources.{name}.html_extractor' must be resiliparse or trafilatura")
    if cfg.sample.enabled:
        for name, src in cfg.sample.sources().items():
            if name in cfg.sources:
                raise ConfigError(f"source name 'sources.{name}' collides with a built-in sample source; rename it "
                                  "or set sample.enabled=false")
            cfg.sources[name] = src
    if cfg.sample.enabled:
        for name, es in cfg.sample.eval_sets().items():
            cfg.decontam.evals.setdefault(name, es)
    if cfg.mds.root is None:
        cfg.mds.root = f"{lake_root(cfg.lake)}/mds"
    if cfg.spark.s3 is None:
        cfg.spark.s3 = cfg.uses_s3()
    budget_tokens = cfg.budget.tokens
    if cfg.model.params is None and cfg.budget.flops is None and budget_tokens is None and cfg.sample.enabled:
        budget_tokens = cfg.sample.budget_tokens * cfg.sample.scale  # the sample's demo budget
    cfg.mixture = dataclasses.replace(
        cfg.mixture, model_params=cfg.model.params, budget_flops=cfg.budget.flops, budget_tokens=budget_tokens,
        tokens_per_param=cfg.tokens_per_param, ladder=list(cfg.ladder))
    return cfg

