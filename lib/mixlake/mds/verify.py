"""Check written MDS streams: every shard by Spark tasks, a seeded sample of shards read back by ``streaming``.

Two passes per stream (issue 13: the driver no longer reads every shard):

1. **Every shard, on the executors** (:func:`check_shards`): one Spark task per group of shards reads each shard file
   named by the stream's ``index.json`` and checks its size and hashes against the index; a compressed shard is
   decompressed and its raw size and hashes checked too; the MDS header is parsed — ``uint32`` sample count, then
   ``count + 1`` ``uint32`` offsets whose last one is the raw shard's length (the layout written by
   :class:`mixlake.mds.format.ShardWriter`) — and the count must equal the index's. Only per-shard verdicts (a few
   numbers each) come back to the driver.
2. **The training path** (:func:`read_back`): ``streaming.StreamingDataset`` opens the stream and iterates every
   sample of ``verify.read_shards`` shards chosen by a seeded hash of their names (``verify.full=true``: the whole
   stream, as the remote a training job would use); token samples must have exactly ``max_seq_len`` ids.

The driver also compares the index's total with the write manifest's and lists the stream's files: a shard file the
index names but that is missing, or a file the index does not name, is a problem. ``streaming`` (and so torch) is
needed only where the read-back runs: the driver or a notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import SparkSession

from mixlake import storage
from mixlake.errors import ConfigError
from mixlake.mds.format import file_hash, write_index
from mixlake.storage import S3Config


@dataclass
class VerifyConfig:
    """``verify`` group: how much of each stream ``verify_mds`` reads back with ``streaming``."""

    full: bool = False  # true: StreamingDataset iterates every shard of every stream (from the stream's own URI)
    read_shards: int = 2  # otherwise: this many shards per stream, chosen by a seeded hash of their names
    seed: int = 0

    def __post_init__(self) -> None:
        if self.read_shards < 1:
            raise ConfigError("config key 'verify.read_shards' must be >= 1 (verify.full=true reads every shard)")


def load_index(directory: str, s3: S3Config | None = None) -> dict[str, Any]:
    return json.loads(storage.read_bytes(storage.join(directory, "index.json"), s3))  # type: ignore[no-any-return]


def _shard_file(shard: dict[str, Any]) -> dict[str, Any]:
    return shard["zip_data"] or shard["raw_data"]  # type: ignore[no-any-return]


def check_shard(directory: str, shard: dict[str, Any], s3: S3Config | None = None) -> list[str]:
    """Problems of one shard file against its index entry (empty: the shard is sound). Runs on an executor."""
    info = _shard_file(shard)
    name = info["basename"]
    data = storage.read_bytes(storage.join(directory, name), s3)
    problems = [f"{name}: {algo} mismatch" for algo, digest in info["hashes"].items()
                if file_hash(algo, data) != digest]
    if len(data) != info["bytes"]:
        problems.append(f"{name}: {len(data)} bytes, index says {info['bytes']}")
    if problems:
        return problems
    raw = data
    if shard["zip_data"]:
        import zstd  # the package streaming decompresses with

        raw = zstd.decompress(data)
        rinfo = shard["raw_data"]
        problems += [f"{name}: decompressed {algo} mismatch" for algo, digest in rinfo["hashes"].items()
                     if file_hash(algo, raw) != digest]
        if len(raw) != rinfo["bytes"]:
            problems.append(f"{name}: decompresses to {len(raw)} bytes, index says {rinfo['bytes']}")
    if len(raw) < 8:
        return [*problems, f"{name}: {len(raw)} bytes is no MDS shard"]
    count = int(np.frombuffer(raw[:4], np.uint32)[0])
    if count != shard["samples"]:
        problems.append(f"{name}: header counts {count} samples, index says {shard['samples']}")
    elif 4 * (count + 2) > len(raw) or int(np.frombuffer(raw[4:4 * (count + 2)], np.uint32)[-1]) != len(raw):
        problems.append(f"{name}: sample offsets do not end at the shard's length")
    return problems


def check_shards(spark: SparkSession, streams: dict[str, str], indexes: dict[str, dict[str, Any]],
                 s3: S3Config | None = None) -> dict[str, list[str]]:
    """:func:`check_shard` for every shard of every stream (``name -> directory``, ``name -> its index.json``), as
    Spark tasks; returns the problems per stream (an empty list: all sound). Per-stream file-list checks happen on
    the driver."""
    problems: dict[str, list[str]] = {name: [] for name in streams}
    tasks: list[tuple[str, str, str]] = []
    for name, directory in sorted(streams.items()):
        index = indexes[name]
        on_disk = set(storage.list_files(directory, s3))
        listed = {_shard_file(s)["basename"] for s in index["shards"]}
        problems[name] += [f"missing shard file {b}" for b in sorted(listed - on_disk)]
        orphans = sorted(p for p in on_disk - listed if not p.endswith("index.json"))
        if orphans:
            problems[name].append(f"files not in the index: {orphans[:5]}")
        tasks += [(name, directory, json.dumps(s)) for s in index["shards"] if _shard_file(s)["basename"] in on_disk]
    if tasks:
        slices = min(len(tasks), max(1, spark.sparkContext.defaultParallelism * 2))
        verdicts = (spark.sparkContext.parallelize(tasks, slices)
                    .map(lambda t: (t[0], check_shard(t[1], json.loads(t[2]), s3))).collect())
        for name, found in verdicts:
            problems[name] += found
    return problems


def chosen_shards(shards: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """``k`` shards picked by a seeded hash of their file names (the same ones on every run), in index order."""
    def key(s: dict[str, Any]) -> str:
        return hashlib.sha1(f"{seed}:{_shard_file(s)['basename']}".encode()).hexdigest()

    picked = {_shard_file(s)["basename"] for s in sorted(shards, key=key)[:k]}
    return [s for s in shards if _shard_file(s)["basename"] in picked]


def read_back(directory: str, index: dict[str, Any], cfg: VerifyConfig, max_seq_len: int | None = None,
              token_column: str = "tokens", s3: S3Config | None = None) -> dict[str, Any]:
    """Iterate the stream (or ``cfg.read_shards`` seeded shards of it, ``index`` being its index.json) with
    ``streaming.StreamingDataset``."""
    from streaming import StreamingDataset

    shards = index["shards"] if cfg.full else chosen_shards(index["shards"], cfg.read_shards, cfg.seed)
    expected = sum(s["samples"] for s in shards)
    # streaming's iterator yields only samples its background threads have marked ready, and those run at most
    # `predownload` samples ahead (default 8 x batch_size = 8 here), sleeping 7 ms ticks in between: the read-back
    # of a 15,548-sample shard spent 13 of its 20 s asleep. Every sample is read anyway, so let them run ahead.
    ahead = max(64, expected)
    with tempfile.TemporaryDirectory(prefix="mixlake-verify-") as tmp, storage.streaming_env(s3):
        if cfg.full:  # the training path: the stream as a remote, downloaded into a local cache by streaming
            ds = StreamingDataset(remote=storage.streaming_uri(directory), local=f"{tmp}/cache", shuffle=False,
                                  batch_size=1, num_canonical_nodes=1, predownload=ahead)
        else:  # the chosen shards under an index of their own, opened by streaming as a local stream
            local = f"{tmp}/stream"
            os.makedirs(local)
            for s in shards:
                name = _shard_file(s)["basename"]
                os.makedirs(os.path.dirname(f"{local}/{name}"), exist_ok=True)
                with open(f"{local}/{name}", "wb") as f:
                    f.write(storage.read_bytes(storage.join(directory, name), s3))
            write_index(local, shards)
            ds = StreamingDataset(local=local, shuffle=False, batch_size=1, num_canonical_nodes=1, predownload=ahead)
        n = len(ds)
        seen = bad_len = 0
        for sample in ds:
            seen += 1
            if max_seq_len is not None and token_column in sample and len(sample[token_column]) != max_seq_len:
                bad_len += 1
        ds = None
    problems = []
    if n != expected or seen != expected:
        problems.append(f"StreamingDataset sees {n} samples and iterates {seen} in {len(shards)} shards, the index "
                        f"lists {expected}")
    if bad_len:
        problems.append(f"{bad_len} token samples are not {max_seq_len} long")
    return {"shards_read": len(shards), "samples_read": seen, "problems": problems}


def verify_streams(spark: SparkSession, streams: dict[str, str], expected_samples: dict[str, int],
                   cfg: VerifyConfig, max_seq_len: int | None = None, s3: S3Config | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Both passes for every stream; per stream: samples and shards in the index, what was read back, problems."""
    indexes = {name: load_index(directory, s3) for name, directory in streams.items()}
    problems = check_shards(spark, streams, indexes, s3)
    reports = {}
    for name, directory in sorted(streams.items()):
        index = indexes[name]
        indexed = sum(s["samples"] for s in index["shards"])
        found = list(problems[name])
        if name in expected_samples and indexed != expected_samples[name]:
            found.append(f"the index lists {indexed} samples, the write manifest expects {expected_samples[name]}")
        back = {"shards_read": 0, "samples_read": 0, "problems": []}  # a stream already unsound is not read back
        if not found:
            back = read_back(directory, index, cfg, max_seq_len, s3=s3)
        found += back["problems"]
        reports[name] = {"directory": directory, "samples": indexed, "shards": len(index["shards"]),
                         "shards_read": back["shards_read"], "samples_read": back["samples_read"],
                         "problems": found, "ok": not found}
    return reports
