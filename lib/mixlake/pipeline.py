"""Run the configured ``stages`` in order in one SparkSession, with lineage and resumability.

Every stage run appends one row to the Delta table ``runs``: run id, stage, status (succeeded | skipped | failed),
the stage's resolved config (secrets masked), its fingerprint, the versions of the tables it read and wrote, record
counts in/out/dropped/quarantined, wall time, error. A stage is **skipped** when its last successful run had the same
fingerprint — the same stage config and the same versions of its input tables (for ingest: the same input files,
sizes and modification times) — and its outputs are still at the versions that run wrote (for ``write_mds`` also: the
MDS files under ``mds.root`` are still the ones it left — same paths, sizes, modification times — so a deleted or
rewritten shard makes it rerun, and ``verify_mds`` reruns whenever they change); ``force=true`` reruns everything.
A crash mid-pipeline is recovered by running again: finished stages are skipped, the failed one reruns (its Delta
writes replace, so nothing is duplicated), and earlier outputs are untouched. One run writes a lake at a time
(:mod:`mixlake.lock`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from mixlake.config import MixlakeConfig
from mixlake.delta import table_exists, table_path, table_version
from mixlake.errors import ConfigError
from mixlake.lock import LakeLease
from mixlake.stages import stage_runner, stage_validator
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import StageResult

log = logging.getLogger("mixlake")

SECRET_KEY = re.compile(r"(?i)(secret|passw(or)?d|access[_-]?key|credential|api[_-]?key|session[_-]?token|"
                        r"auth[_-]?token|private[_-]?key)")
URI_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")

# config sections that determine each stage's output (besides its input tables)
CONFIG_KEYS: dict[str, list[str]] = {
    "sample": ["sample"], "ingest": ["sources", "sample", "ingest"], "quality": ["quality", "quality_model", "sources"],
    "dedup": ["dedup", "sources"], "eval_dedup": ["eval", "dedup", "sample"], "spans": ["spans"],
    "semdedup": ["semdedup", "dedup", "sources"], "eval_semdedup": ["semdedup"],
    "decontam": ["decontam"],
    "tokens": ["tokenizer", "tokens"],
    "mix": ["mixture", "model", "budget", "tokens_per_param", "ladder", "mds", "sample"],
    "write_mds": ["mds", "tokenizer"], "verify_mds": ["mds", "verify"],
}
ALWAYS_RUN = {"report", "sample"}


def _plain(x: Any) -> Any:
    return dataclasses.asdict(x) if dataclasses.is_dataclass(x) and not isinstance(x, type) else x


def prepare_sources(cfg: MixlakeConfig) -> None:
    """Sources that mixlake makes itself are made before ingest reads (or fingerprints) them: the built-in sample,
    when ``sample.enabled`` (generated once per set of knobs under ``sample.dir``)."""
    if cfg.sample.enabled:
        from mixlake.sample.generate import ensure_sample

        ensure_sample(cfg.sample)


class StageFailed(RuntimeError):
    """A stage raised; earlier stages' outputs are intact (each wrote its own Delta commits)."""


def mask_secrets(obj: Any) -> Any:
    """A copy of a plain config with secret-looking keys' values and URI credentials replaced by ``***``."""
    if isinstance(obj, dict):
        return {k: ("***" if SECRET_KEY.search(str(k)) and v is not None else mask_secrets(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask_secrets(v) for v in obj]
    if isinstance(obj, str):
        return URI_USERINFO.sub("***@", obj)
    return obj


def stage_io(name: str, cfg: MixlakeConfig) -> tuple[list[str], list[str]]:
    """(tables a stage reads, tables it writes)."""
    c = cleaned_input
    packs_ids = cfg.mds.format == "tokens" and cfg.mds.token_ids != "tokenize"
    io: dict[str, tuple[list[str], list[str]]] = {
        "sample": ([], []),
        "ingest": ([], ["documents", "quarantine", "ingest_files"]),
        "quality": (["documents"], ["quality", "quality_kept", "quality_counts"]),
        "dedup": ([c(cfg, cfg.dedup.input_table, stage="dedup")],
                  ["duplicates", "deduped", "dedup_counts", "dedup_summary"]),
        "eval_dedup": (["duplicates", "documents"], ["dedup_eval"]),
        "semdedup": ([c(cfg, cfg.semdedup.input_table, stage="semdedup")],
                     ["semdeduped", "semantic_duplicates", "semdedup_sweep", "semdedup_clusters"]),
        "eval_semdedup": ([], ["semdedup_eval"]),
        "spans": ([c(cfg, cfg.spans.input_table, stage="spans")], ["spans", "documents_clean"]),
        "decontam": ([c(cfg, cfg.decontam.input_table, stage="decontam")],
                     ["contamination", "documents_decontaminated", "decontam_counts"]),
        "tokens": ([c(cfg, cfg.tokens.input_table, stage="tokens")],
                   [*(["token_ids"] if cfg.tokens.store_ids else []), "token_counts", "token_summary"]),
        "mix": (["token_summary"], ["mixture"]),
        "write_mds": ([c(cfg, cfg.mds.input_table, stage="write_mds"), "mixture",
                       *(["token_ids"] if packs_ids else [])],
                      ["mds_manifest"]),
        "verify_mds": (["mds_manifest"], []),
        "report": ([], []),
    }
    return io.get(name, ([], []))


def stage_files(name: str, cfg: MixlakeConfig) -> tuple[list[str], list[str]]:
    """(file trees a stage reads, file trees it writes) outside the Delta tables: the MDS streams. A stage whose
    trees changed since its last success reruns even when its tables did not (a shard deleted or rewritten)."""
    root = cfg.mds.root or ""
    return {"write_mds": ([], [root]), "verify_mds": ([root], []),
            "decontam": ([], [f"{cfg.lake.rstrip('/')}/eval_clean"])}.get(name, ([], []))


def _trees(roots: list[str], cfg: MixlakeConfig) -> list[str]:
    from mixlake.storage import tree_fingerprint

    return [tree_fingerprint(r, cfg.s3) for r in roots]  # by position: a root URI may carry credentials


def _input_files_fingerprint(cfg: MixlakeConfig) -> str:
    """Paths, sizes and mtimes of every declared source file (ingest's inputs), local or on S3."""
    return _files_fingerprint([src.path for src in cfg.source_list()], cfg)


def _files_fingerprint(patterns: list[str], cfg: MixlakeConfig) -> str:
    from mixlake.storage import glob_files

    h = hashlib.sha256()
    for pattern in patterns:
        for p, size, mtime in glob_files(pattern, cfg.s3)[1]:
            h.update(f"{p}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def fingerprint(spark: SparkSession, name: str, cfg: MixlakeConfig) -> dict[str, Any]:
    section = {k: _plain(getattr(cfg, k)) for k in CONFIG_KEYS.get(name, [])}
    inputs, _ = stage_io(name, cfg)
    versions = {t: table_version(spark, table_path(cfg.lake, t)) for t in inputs}
    fp: dict[str, Any] = {"config": section, "inputs": versions}
    if name == "ingest":
        fp["files"] = _input_files_fingerprint(cfg)
    if name == "decontam":  # the eval sets are inputs too
        fp["files"] = _files_fingerprint([e.path for e in cfg.decontam.eval_sets()], cfg)
    if name == "eval_semdedup" and cfg.semdedup.eval_pages:  # so are the evaluation's pages
        fp["files"] = _files_fingerprint([cfg.semdedup.eval_pages], cfg)
    if stage_files(name, cfg)[0]:
        fp["trees"] = _trees(stage_files(name, cfg)[0], cfg)
    fp["hash"] = hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return fp


RUNS_DDL = ("run_id string, stage string, status string, started_at timestamp, seconds double, fingerprint string, "
            "config string, input_versions map<string,bigint>, output_versions map<string,bigint>, "
            "records_in bigint, records_out bigint, dropped bigint, quarantined bigint, details string, "
            "error string")


def _runs_path(cfg: MixlakeConfig) -> str:
    return table_path(cfg.lake, "runs")


def last_successes(spark: SparkSession, cfg: MixlakeConfig, stages: list[str]) -> dict[str, Any]:
    """The latest succeeded ``runs`` row of each of ``stages`` (one Spark job for the whole run, not one per stage:
    a stage's rows only change when that stage runs, so reading them all up front sees what a per-stage read would)."""
    path = _runs_path(cfg)
    if not stages or not table_exists(spark, path):
        return {}
    latest = Window.partitionBy("stage").orderBy(F.col("started_at").desc(), F.col("run_id").desc())
    rows = (spark.read.format("delta").load(path)
            .filter((F.col("status") == "succeeded") & F.col("stage").isin(stages))
            .withColumn("_rank", F.row_number().over(latest)).filter("_rank = 1").drop("_rank").collect())
    return {r.stage: r for r in rows}


def record(spark: SparkSession, cfg: MixlakeConfig, row: dict[str, Any]) -> None:
    spark.createDataFrame([row], RUNS_DDL).write.format("delta").mode("append").save(_runs_path(cfg))


def run_pipeline(spark: SparkSession | Callable[[], SparkSession], cfg: MixlakeConfig,
                 only: list[str] | None = None) -> list[StageResult]:
    """Run ``cfg.stages`` (or just ``only``: a single job keeps the pipeline's ``stages`` for context).

    ``spark`` is a session, or a function that builds one (the ``mixlake`` command and the jobs): the pipeline then
    takes the lake's lease first — a second run fails before starting a JVM — and starts the session while it makes
    the built-in sample, so the JVM's start (~8 s) and the sample's generation (driver Python) overlap."""
    stages = list(only) if only is not None else list(cfg.stages)
    runners = [(name, stage_runner(name)) for name in stages]  # unknown stage names fail before any work
    for name in stages:
        stage_validator(name)(cfg)  # every stage's config is checked before the first one runs
    force = cfg.force or only is not None  # a job run on its own always runs
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    with LakeLease(cfg.lake, run_id, cfg.lock, cfg.s3):
        def prepare() -> None:
            if any(name in ("ingest", "sample") for name in stages):
                prepare_sources(cfg)

        if isinstance(spark, SparkSession):
            prepare()
        else:
            spark = _started_while(spark, prepare)
        return _run_stages(spark, cfg, runners, run_id, force)


def _started_while(build: Callable[[], SparkSession], work: Callable[[], None]) -> SparkSession:
    """``build()`` run in a thread while ``work()`` runs here; the session, or the error either raised (the work's
    first). The JVM starts in a child process, so the thread mostly waits and the GIL stays with ``work``."""
    built: dict[str, Any] = {}

    def target() -> None:
        try:
            built["spark"] = build()
        except BaseException as e:  # handed to the caller below, after the work: nothing is swallowed
            built["error"] = e

    thread = threading.Thread(target=target, name="mixlake-session-start", daemon=True)
    thread.start()
    try:
        work()
    finally:
        thread.join()
    if "error" in built:
        raise built["error"]
    spark: SparkSession = built["spark"]
    # the session a thread builds is active in that thread only (Spark keeps it thread-local); make it this
    # thread's active session, as building it here would have — what PySpark's createDataFrame does too
    SparkSession._activeSession = spark
    spark._jvm.SparkSession.setActiveSession(spark._jsparkSession)  # type: ignore[union-attr]
    return spark


def _run_stages(spark: SparkSession, cfg: MixlakeConfig, runners: list[tuple[str, Any]], run_id: str,
                force: bool) -> list[StageResult]:
    fail_stage = cfg.debug.fail_stage
    masked = json.dumps(mask_secrets(cfg.to_dict()), sort_keys=True, default=str)
    results = []
    previous = {} if force else last_successes(spark, cfg, [n for n, _ in runners if n not in ALWAYS_RUN])
    for i, (name, runner) in enumerate(runners, start=1):
        fp = fingerprint(spark, name, cfg)
        _, outputs = stage_io(name, cfg)
        prev = previous.get(name)
        out_trees = stage_files(name, cfg)[1]
        if (prev is not None and prev.fingerprint == fp["hash"]  # no prev when forced or for ALWAYS_RUN stages
                and all(table_version(spark, table_path(cfg.lake, t)) == (prev.output_versions or {}).get(t)
                        for t in outputs)
                and (not out_trees or json.loads(prev.details or "{}").get("output_trees") == _trees(out_trees, cfg))):
            print(f"[mixlake] {name:<8} skipped: inputs and config unchanged since run {prev.run_id} "
                  f"({i}/{len(runners)})", flush=True)
            record(spark, cfg, _row(run_id, name, "skipped", 0.0, fp, masked, None, {}, None))
            results.append(StageResult(name, details={"skipped": prev.run_id}))
            continue
        print(f"[mixlake] {name:<8} starting ({i}/{len(runners)})", flush=True)
        t0 = time.time()
        started = datetime.now(UTC)
        try:
            if fail_stage == name:
                raise RuntimeError(f"debug.fail_stage={name}: injected failure")
            res = runner(spark, cfg)
        except Exception as e:
            record(spark, cfg, _row(run_id, name, "failed", time.time() - t0, fp, masked, None,
                                    {}, f"{type(e).__name__}: {e}"[:4000], started))
            if isinstance(e, ConfigError):
                raise ConfigError(f"stage '{name}': {e}") from e
            raise StageFailed(f"stage '{name}' failed: {type(e).__name__}: {e}") from e
        res.seconds = time.time() - t0
        outs = {t: table_version(spark, table_path(cfg.lake, t)) for t in outputs}
        if out_trees:
            res.details["output_trees"] = _trees(out_trees, cfg)
        record(spark, cfg, _row(run_id, name, "succeeded", res.seconds, fp, masked, res, outs, None, started))
        print(res.line(), flush=True)
        results.append(res)
    return results


def _row(run_id: str, stage: str, status: str, seconds: float, fp: dict[str, Any], config: str,
         res: StageResult | None, outputs: dict[str, int | None], error: str | None,
         started: datetime | None = None) -> dict[str, Any]:
    return {
        "run_id": run_id, "stage": stage, "status": status, "started_at": started or datetime.now(UTC),
        "seconds": float(seconds), "fingerprint": fp["hash"], "config": config,
        "input_versions": {k: v for k, v in fp["inputs"].items() if v is not None},
        "output_versions": {k: v for k, v in outputs.items() if v is not None},
        "records_in": res.records_in if res else None, "records_out": res.records_out if res else None,
        "dropped": res.dropped if res else None, "quarantined": res.quarantined if res else None,
        "details": json.dumps(mask_secrets(res.details), default=str, sort_keys=True) if res else None,
        "error": error,
    }
