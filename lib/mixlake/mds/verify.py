"""Read written streams back with the real ``streaming`` library and check them.

For each stream: every shard file's hashes match the index; ``streaming.StreamingDataset`` (remote = the stream,
local = a temp cache) sees and iterates exactly the index's
sample count, which equals the write manifest's; every sample decodes (token blocks have exactly ``max_seq_len``
ids). Needs ``mosaicml-streaming`` (and so torch) where it runs — the driver or a notebook, not the executors.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from mixlake.mds.format import file_hash


def verify_stream(directory: str, expected_samples: int | None = None, max_seq_len: int | None = None,
                  token_column: str = "tokens") -> dict[str, Any]:
    from streaming import StreamingDataset

    with open(os.path.join(directory, "index.json")) as f:
        index = json.load(f)
    problems: list[str] = []
    for shard in index["shards"]:
        info = shard["zip_data"] or shard["raw_data"]
        path = os.path.join(directory, info["basename"])
        if not os.path.exists(path):
            problems.append(f"missing shard file {info['basename']}")
            continue
        with open(path, "rb") as fh:
            data = fh.read()
        if len(data) != info["bytes"]:
            problems.append(f"{info['basename']}: {len(data)} bytes, index says {info['bytes']}")
        for algo, digest in info["hashes"].items():
            if file_hash(algo, data) != digest:
                problems.append(f"{info['basename']}: {algo} mismatch")
    indexed = sum(s["samples"] for s in index["shards"])
    with tempfile.TemporaryDirectory(prefix="mixlake-verify-") as cache:
        # the training path: the stream as a remote, decompressed into a local cache by streaming itself
        ds = StreamingDataset(remote=directory, local=cache, shuffle=False, batch_size=1,
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
    on_disk = {os.path.relpath(os.path.join(dp, f), directory) for dp, _, fs in os.walk(directory) for f in fs}
    listed = {(s["zip_data"] or s["raw_data"])["basename"] for s in index["shards"]}
    orphans = sorted(p for p in on_disk - listed if not p.endswith("index.json"))
    if orphans:
        problems.append(f"files not in the index: {orphans[:5]}")
    return {"directory": directory, "samples": n, "shards": len(index["shards"]), "problems": problems,
            "ok": not problems}
