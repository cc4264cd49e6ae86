"""Documents → one MDS stream per source, written by the Spark tasks themselves, exactly once.

Layout (``mds.root``, default ``${lake}/mds``)::

    <root>/<source>/index.json                 merges every part: basenames "v-<hash>/part-00003/shard.00000.mds.zstd"
    <root>/<source>/v-<hash>/part-00000/shard.00000.mds.zstd ...
    <root>/<source>/v-<hash>/part-00000/index.json   the part's own index (a valid MDS directory by itself)

``v-<hash>`` names the stream's version by its content (the first 12 hex digits of SHA-256 over the index with
part-relative basenames), so the same input and config give the same path and bytes.

* **Which documents**: with a mixture plan, a source planned for fewer than one epoch keeps a deterministic
  Bernoulli sample of its documents (``xxhash64(seed + 1, doc_id) mod (2^31 - 1) / (2^31 - 1) < epochs``);
  otherwise all of them (repetition is the reader's job: ``streams.yaml`` proportions).
* **Order**: documents are assigned to logical part ``p = xxhash64(seed, doc_id) mod parts`` and ordered within a part
  by ``xxhash64(seed, doc_id)`` — a seeded permutation of ``doc_id``, independent of arrival order. Directories are
  named by that logical part index, so the same input and config give byte-identical shards and index.
* **Exactly once**: a task attempt writes its parts under ``_attempts/part-XXXXX.<taskAttemptId>`` (on the final
  filesystem, one shard at a time as each closes: bounded worker disk), and returns the attempt directory and the
  part's index entries to the driver. Only the attempts Spark reports as successful are moved into place; every
  other attempt directory (failed, speculative, killed with its executor) is deleted before the index is written.
  The whole run is written under ``<root>/.staging-<run>/`` (a late write of a zombie attempt lands there too, and
  the next run deletes it) and published per source at the end: the new version's directory first, beside the
  published one, then ``index.json`` is replaced in one step (a rename locally, one PUT on S3), then the old
  version is deleted — a reader sees the old stream or the new one, never the old index over new shards (see
  :func:`mixlake.storage.publish_versioned`). A lease (``<root>/_mixlake.lock``, :mod:`mixlake.lock`) keeps a
  second writer off the same root.
* **Where**: ``mds.root`` may be a local/mounted path or ``s3://``/``s3a://`` (through ``pyarrow.fs`` with the
  ``storage.s3`` settings); ``streaming`` reads it as ``remote=s3://...`` with a local cache.
* **Samples**: ``text`` → ``{'text': 'str'}`` (+ ``doc_id``/``source`` columns if configured); ``tokens`` →
  llm-foundry's concat-tokens layout of each document's ids — the input's ``ids`` column when it has one (the tokens
  stage's ``token_ids``, which then stands in for the text: ``n_bytes`` sizes the parts), else the text encoded
  here — per part ``buffer += [bos] + ids + [eos]`` cut into ``max_seq_len`` blocks
  (``ndarray:uint16`` when the vocabulary fits, else ``ndarray:int32``; ``mds.token_dtype=int32`` to match
  llm-foundry exactly), the remainder dropped (as llm-foundry) or padded (``mds.remainder=pad``).

Written with mixlake's own MDS writer (:mod:`mixlake.mds.format`, byte-identical to ``streaming.MDSWriter``) so that
executors need neither torch nor ``streaming`` (which imports torch eagerly).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.errors import ConfigError
from mixlake.lock import LakeLease, LockConfig
from mixlake.mds.format import ShardWriter, index_bytes, prefixed
from mixlake.storage import S3Config
from mixlake.tokens.tokenizer import TokenizerConfig, encode_batch, eos_id, vocab_size


@dataclass
class MDSConfig:
    """``mds`` group."""

    root: str | None = None  # null: ${lake}/mds
    remote: str | None = None
    local_cache: str = "/tmp/mixlake-mds-cache"
    format: str = "tokens"  # tokens | text
    max_seq_len: int = 2048
    stratified: bool = False
    compression: str | None = "zstd"
    hashes: list[str] = field(default_factory=lambda: ["sha1", "xxh3_64"])
    size_limit: int = 1 << 26
    partitions: int | None = None  # parts per source; null: one per target_part_bytes of text
    target_part_bytes: int = 1 << 27
    remainder: str = "drop"  # drop | pad
    token_dtype: str = "auto"  # auto (uint16 if the vocabulary fits, else int32) | uint16 | int32
    text_columns: list[str] = field(default_factory=list)  # extra str columns in text samples (doc_id, source)
    seed: int = 17
    select: str = "plan"  # plan: follow the mixture plan (sub-sample sources under one epoch) | all
    empty_source: str = "fail"  # fail | skip
    input_table: str = "auto"
    token_ids: str = "auto"  # auto: pack token_ids if made from this input version, else tokenize | table | tokenize
    fail_first_attempt_of_part: int | None = None  # testing: fault injection (first attempt of this part raises)
    slow_part_seconds: float = 0.0  # testing: a task sleeps this long after writing each part (executor-kill window)

    def __post_init__(self) -> None:
        checks = {"format": ("tokens", "text"), "remainder": ("drop", "pad"),
                  "token_dtype": ("auto", "uint16", "int32", "uint32"), "select": ("plan", "all"),
                  "empty_source": ("fail", "skip"), "token_ids": ("auto", "table", "tokenize")}
        for key, allowed in checks.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"config key 'mds.{key}' must be one of {'|'.join(allowed)}")
        if self.max_seq_len < 1:
            raise ConfigError("config key 'mds.max_seq_len' must be >= 1")


def token_dtype(cfg: MDSConfig, tok: TokenizerConfig) -> str:
    if cfg.token_dtype != "auto":
        return cfg.token_dtype
    return "uint16" if vocab_size(tok) <= 1 << 16 else "int32"


def columns(cfg: MDSConfig, tok: TokenizerConfig) -> dict[str, str]:
    if cfg.format == "tokens":
        return {"tokens": f"ndarray:{token_dtype(cfg, tok)}"}
    return {"text": "str", **{c: "str" for c in cfg.text_columns}}


def selected(cfg: MDSConfig, fraction: dict[str, float]) -> Column:
    """Whether a document is in the sub-sample the mixture plan asks of its source (a seeded draw per doc_id)."""
    pick = F.xxhash64(F.lit(cfg.seed + 1), F.col("doc_id"))
    u = F.pmod(pick, F.lit(2_147_483_647)).cast("double") / F.lit(2_147_483_647.0)  # uniform in [0, 1)
    frac = (F.create_map(*[x for s, f in sorted(fraction.items()) for x in (F.lit(s), F.lit(float(f)))])[
        F.col("source")] if fraction else F.lit(1.0))
    return u < F.coalesce(frac, F.lit(1.0))


def selection_counts(docs: DataFrame, cfg: MDSConfig, fraction: dict[str, float]) -> dict[str, tuple[int, int]]:
    """Per source: (documents selected, documents not selected by the mixture plan), counted by Spark."""
    rows = docs.groupBy("source").agg(F.sum(selected(cfg, fraction).cast("long")).alias("yes"),
                                      F.sum((~selected(cfg, fraction)).cast("long")).alias("no")).collect()
    return {r.source: (int(r.yes or 0), int(r.no or 0)) for r in rows}


def order_columns(docs: DataFrame, cfg: MDSConfig, parts: dict[str, int], fraction: dict[str, float]) -> DataFrame:
    """Adds ``_key`` (order), ``_part`` (logical part) and filters to the selected documents."""
    key = F.xxhash64(F.lit(cfg.seed), F.col("doc_id"))
    nparts = F.create_map(*[x for s, n in sorted(parts.items()) for x in (F.lit(s), F.lit(int(n)))])
    out = docs.withColumn("_key", key).withColumn("_part", F.pmod(key, nparts[F.col("source")]).cast("int"))
    return out.filter(selected(cfg, fraction))


def _writer_task(cfg: MDSConfig, tok: TokenizerConfig, staging: str, cols: dict[str, str],
                 s3: S3Config | None) -> Any:
    eos = eos_id(tok) if cfg.format == "tokens" else -1  # on the driver: a task packing stored ids loads no tokenizer
    prefix = [tok.bos_id] if tok.bos_id is not None else []

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        attempt = ctx.taskAttemptId() if ctx else 0
        first_attempt = ctx.attemptNumber() == 0 if ctx else True
        state: dict[str, Any] = {"key": None}
        dtype = cols["tokens"].split(":")[1] if "tokens" in cols else None

        def open_part(source: str, part: int) -> None:
            d = storage.join(staging, source, "_attempts", f"part-{part:05d}.{attempt}")
            storage.rmtree(d, s3)
            storage.makedirs(d, s3)

            def sink(name: str, data: bytes) -> None:
                storage.write_bytes(storage.join(d, name), data, s3)

            state.update(key=(source, part), dir=d, writer=ShardWriter(cols, sink, cfg.compression, cfg.hashes,
                                                                       cfg.size_limit),
                         buffer=[], samples=0, docs=0, tokens=0)

        def emit_blocks(final: bool) -> None:
            buf = state["buffer"]
            n = cfg.max_seq_len
            full = len(buf) // n
            for i in range(full):
                state["writer"].write({"tokens": np.asarray(buf[i * n:(i + 1) * n], dtype=dtype)})
                state["samples"] += 1
            state["buffer"] = buf[full * n:]
            if final and state["buffer"] and cfg.remainder == "pad":
                rest = state["buffer"] + [eos] * (n - len(state["buffer"]))
                state["writer"].write({"tokens": np.asarray(rest, dtype=dtype)})
                state["samples"] += 1
                state["buffer"] = []

        def close_part() -> pa.RecordBatch:
            if cfg.format == "tokens":
                emit_blocks(final=True)
            shards = state["writer"].finish()
            storage.write_bytes(storage.join(state["dir"], "index.json"), index_bytes(shards), s3)
            source, part = state["key"]
            if cfg.slow_part_seconds:
                time.sleep(cfg.slow_part_seconds)
            if cfg.fail_first_attempt_of_part == part and first_attempt:
                raise RuntimeError(f"fault injection: first attempt of part {part} fails after writing its files")
            return pa.RecordBatch.from_pylist([{
                "source": source, "part": part, "attempt_dir": state["dir"], "shards": json.dumps(shards),
                "samples": state["samples"], "docs": state["docs"], "tokens": state["tokens"]}],
                schema=RESULT_SCHEMA)

        for b in batches:
            srcs = b.column("source").to_pylist()
            parts_ = b.column("_part").to_pylist()
            extra = {c: b.column(c).to_pylist() for c in cfg.text_columns} if cfg.format == "text" else {}
            if cfg.format == "text":
                texts = b.column("text").to_pylist()
            elif "ids" in b.schema.names:  # stored by the tokens stage
                ids = b.column("ids").to_pylist()
            else:
                ids = encode_batch(tok, b.column("text").to_pylist())
            for i, (s, p) in enumerate(zip(srcs, parts_, strict=True)):
                if state["key"] != (s, p):
                    if state["key"] is not None:
                        yield close_part()
                    open_part(s, p)
                state["docs"] += 1
                if cfg.format == "tokens":
                    state["buffer"].extend(prefix + ids[i] + [eos])
                    state["tokens"] += len(ids[i])
                    if len(state["buffer"]) >= cfg.max_seq_len:
                        emit_blocks(final=False)
                else:
                    state["writer"].write({"text": texts[i], **{c: str(v[i]) for c, v in extra.items()}})
                    state["samples"] += 1
        if state["key"] is not None:
            yield close_part()

    return run


RESULT_SCHEMA = pa.schema([("source", pa.string()), ("part", pa.int32()), ("attempt_dir", pa.string()),
                           ("shards", pa.string()), ("samples", pa.int64()), ("docs", pa.int64()),
                           ("tokens", pa.int64())])
RESULT_DDL = "source string, part int, attempt_dir string, shards string, samples bigint, docs bigint, tokens bigint"


def write_streams(docs: DataFrame, cfg: MDSConfig, tok: TokenizerConfig, root: str,
                  fraction: dict[str, float], s3: S3Config | None = None,
                  lock: LockConfig | None = None) -> list[dict[str, Any]]:
    """Write every source of ``docs`` (doc_id, source and text — or, for ``format=tokens``, ids and n_bytes instead of
    text) as an MDS stream under ``root`` (a local path or ``s3://``); returns the per-part manifest rows. Holds the
    root's lease meanwhile (``lock``; default: :class:`LockConfig` defaults)."""
    s3 = s3.resolved() if s3 else None  # executors have neither the driver's environment nor its config
    with LakeLease(root, f"write_mds-{uuid.uuid4().hex[:12]}", lock or LockConfig(), s3):
        return _write_streams(docs, cfg, tok, root, fraction, s3)


def _write_streams(docs: DataFrame, cfg: MDSConfig, tok: TokenizerConfig, root: str,
                   fraction: dict[str, float], s3: S3Config | None) -> list[dict[str, Any]]:
    stored_ids = "ids" in docs.columns
    if stored_ids and cfg.format != "tokens":
        raise ConfigError("config key 'mds.format': stored token ids can only be written as format=tokens")
    text_bytes = F.col("n_bytes") if stored_ids else F.octet_length("text")
    sizes = {r.source: (int(r.n), int(r.bytes or 0)) for r in
             docs.groupBy("source").agg(F.count(F.lit(1)).alias("n"), F.sum(text_bytes).alias("bytes")).collect()}
    if not sizes:
        raise ConfigError("nothing to write: the input table has no documents")
    parts = {s: cfg.partitions or max(1, -(-b // cfg.target_part_bytes)) for s, (_, b) in sizes.items()}
    cols = columns(cfg, tok)
    run = uuid.uuid4().hex[:12]
    storage.makedirs(root, s3)
    for stale in storage.listdir(root, s3):  # a crashed earlier run's staging area (we hold the root's lease)
        if stale.startswith((".staging-", ".old-")):
            storage.rmtree(storage.join(root, stale), s3)
    staging = storage.join(root, f".staging-{run}")
    payload = "ids" if stored_ids else "text"
    keep = ["source", "text", *cfg.text_columns] if cfg.format == "text" else ["source", payload]
    ordered = (order_columns(docs, cfg, parts, fraction)
               .repartition(sum(parts.values()), "source", "_part")
               .sortWithinPartitions("source", "_part", "_key")
               .select(*dict.fromkeys([*keep, "_part"])))
    try:
        storage.makedirs(staging, s3)
        results = ordered.mapInArrow(_writer_task(cfg, tok, staging, cols, s3), RESULT_DDL).collect()
        manifest = _commit(results, staging, root, sizes, cfg, s3)
    finally:
        storage.rmtree(staging, s3)
    return manifest


def _commit(results: list[Any], staging: str, root: str, sizes: dict[str, tuple[int, int]],
            cfg: MDSConfig, s3: S3Config | None) -> list[dict[str, Any]]:
    by_source: dict[str, list[Any]] = {}
    for r in results:
        by_source.setdefault(r.source, []).append(r)
    manifest = []
    for source in sorted(sizes):
        rows = sorted(by_source.get(source, []), key=lambda r: r.part)
        if not rows or sum(r.samples for r in rows) == 0:
            if cfg.empty_source == "skip":
                continue
            raise ConfigError(f"source {source!r} produced no MDS samples (no documents selected, or fewer tokens "
                              f"than one {cfg.max_seq_len}-token block); set mds.empty_source=skip to skip it")
        sdir = storage.join(staging, source)
        index: list[dict[str, Any]] = []
        for r in rows:
            if r.samples == 0:  # an empty part writes nothing
                continue
            final = storage.join(sdir, f"part-{r.part:05d}")
            storage.move_tree(r.attempt_dir, final, s3)  # only the successful attempt Spark reported
            index += prefixed(json.loads(r.shards), f"part-{r.part:05d}")
            manifest.append({"source": source, "part": r.part, "samples": r.samples, "docs": r.docs,
                             "tokens": r.tokens, "shards": len(json.loads(r.shards))})
        storage.rmtree(storage.join(sdir, "_attempts"), s3)  # failed/speculative attempts
        version = "v-" + hashlib.sha256(index_bytes(index)).hexdigest()[:12]
        storage.publish_versioned(sdir, storage.join(root, source), version, "index.json",
                                  index_bytes(prefixed(index, version)), s3)
    return manifest
