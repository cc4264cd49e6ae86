"""Read written streams back with the real ``streaming`` library and check them.

For each stream: every shard file's hashes match the index; ``streaming.StreamingDataset`` (remote = the stream,
local = a temp cache) sees and iterates exactly the index's
sample count, which equals the write manifest's; every sample decodes (token blocks have exactly ``max_seq_len``
ids). Needs ``mosaicml-streaming`` (and so torch) where it runs — the driver or a notebook, not the executors.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

from mixlake import storage
from mixlake.mds.format import file_hash
from mixlake.storage import S3Config


def verify_stream(directory: str, expected_samples: int | None = None, max_seq_len: int | None = None,
                  token_column: str = "tokens", s3: S3Config | None = None) -> dict[str, Any]:
    """Check one stream (a local directory or ``s3://``/``s3a://`` prefix); ``s3`` reaches the S3 endpoint."""
    from streaming import StreamingDataset

    index = json.loads(storage.read_bytes(storage.join(directory, "index.json"), s3))
    on_disk = set(storage.list_files(directory, s3))
    problems: list[str] = []
    for shard in index["shards"]:
        info = shard["zip_data"] or shard["raw_data"]
        if info["basename"] not in on_disk:
            problems.append(f"missing shard file {info['basename']}")
            continue
        data = storage.read_bytes(storage.join(directory, info["basename"]), s3)
        if len(data) != info["bytes"]:
            problems.append(f"{info['basename']}: {len(data)} bytes, index says {info['bytes']}")
        for algo, digest in info["hashes"].items():
            if file_hash(algo, data) != digest:
                problems.append(f"{info['basename']}: {algo} mismatch")
    indexed = sum(s["samples"] for s in index["shards"])
    with tempfile.TemporaryDirectory(prefix="mixlake-verify-") as cache, storage.streaming_env(s3):
        # the training path: the stream as a remote, downloaded and decompressed into a local cache by streaming
        ds = StreamingDataset(remote=storage.streaming_uri(directory), local=cache, shuffle=False, batch_size=1,
                              num_canonical_nodes=1)
        n = len(ds)
        seen = 0
        bad_len = 0
        for sample in ds:
            seen += 1
            if max_seq_len is not None and token_column in sample and len(sample[token_column]) != max_seq_len:
                bad_len += 1
        ds = None
    if n != indexed or seen != indexed:
        problems.append(f"StreamingDataset sees {n} samples and iterates {seen}, the index lists {indexed}")
    if expected_samples is not None and n != expected_samples:
        problems.append(f"{n} samples, the write manifest expects {expected_samples}")
    if bad_len:
        problems.append(f"{bad_len} token samples are not {max_seq_len} long")
    listed = {(s["zip_data"] or s["raw_data"])["basename"] for s in index["shards"]}
    orphans = sorted(p for p in on_disk - listed if not p.endswith("index.json"))
    if orphans:
        problems.append(f"files not in the index: {orphans[:5]}")
    return {"directory": directory, "samples": n, "shards": len(index["shards"]), "problems": problems,
            "ok": not problems}
