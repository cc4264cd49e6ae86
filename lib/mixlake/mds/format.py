"""MDS (MosaicML Streaming) shards, written without torch.

The on-disk format mixlake writes — byte-identical to ``streaming.MDSWriter`` 0.13 for the same samples and
settings (``tests/test_mds.py`` proves it) — is:

``index.json`` (written with ``json.dump(obj, f, sort_keys=True)``)::

    {"shards": [<shard>, ...], "version": 2}
    <shard> = {"column_encodings": [...], "column_names": [...], "column_sizes": [null | int, ...],
               "compression": null | "zstd" | "zstd:<level>", "format": "mds", "hashes": ["sha1", "xxh3_64"],
               "raw_data": {"basename": "shard.00000.mds", "bytes": n, "hashes": {algo: hexdigest}},
               "zip_data": null | {"basename": "shard.00000.mds.zstd", "bytes": n, "hashes": {...}},
               "samples": n, "size_limit": int | null, "version": 2}

Columns are sorted by name. A root index may merge several directories: basenames then carry their relative
directory (``v-<hash>/part-00003/shard.00000.mds.zstd``), which is how streaming resolves them.

A shard file (``raw_data``; with compression only the compressed file ``zip_data`` is kept, compressed whole)::

    uint32 num_samples
    uint32 offsets[num_samples + 1]      absolute byte offsets of each sample's start, then the end
    bytes  config                        json.dumps(<shard config>, sort_keys=True): version, format, compression,
                                         hashes, size_limit, column_names, column_encodings, column_sizes
    bytes  samples...

A sample is one uint32 length per variable-size column (in column order), then each column's payload:
``str`` → UTF-8; ``int`` → int64; ``ndarray:<dtype>`` → a byte ``ndim << 2 | shape_dtype`` (0..3 = uint8..uint64,
the smallest that holds the largest dimension), the shape in that dtype, then the values (little-endian).

A shard is closed when adding the next sample would make ``8 + len(config) + Σ(len(sample) + 4)`` exceed
``size_limit`` (streaming's rule). Compression is the ``zstd`` package's ``zstd.compress(data, level)`` (default
level 3), exactly what streaming calls; hashes are ``hashlib``/``xxhash`` hex digests of the file bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash

NDARRAY_VALUE_DTYPES = {"uint8", "int8", "uint16", "int16", "float16", "uint32", "int32", "float32", "uint64",
                        "int64", "float64"}
SHAPE_DTYPES = ["uint8", "uint16", "uint32", "uint64"]


def column_size(encoding: str) -> int | None:
    """Fixed encoded size of a column, or None when variable (only what mixlake writes is supported)."""
    if encoding in ("str", "bytes", "json") or encoding.startswith("ndarray"):
        parts = encoding.split(":")
        if parts[0] == "ndarray" and len(parts) == 3:
            return int(np.prod([int(x) for x in parts[2].split(",")])) * np.dtype(parts[1]).itemsize
        return None
    if encoding == "int":
        return 8
    raise ValueError(f"unsupported MDS encoding {encoding!r} (mixlake writes str, bytes, json, int, ndarray:<dtype>)")


def encode_value(encoding: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if encoding == "str":
        return value.encode("utf-8")
    if encoding == "json":
        return json.dumps(value, sort_keys=True).encode("utf-8")
    if encoding == "int":
        return np.int64(value).tobytes()
    if encoding.startswith("ndarray"):
        parts = encoding.split(":")
        arr = np.asarray(value)
        if len(parts) >= 2 and arr.dtype.name != parts[1]:
            raise ValueError(f"Wrong dtype: expected {parts[1]}, got {arr.dtype.name}.")
        if arr.size == 0:
            raise ValueError("Attempting to encode a numpy array with 0 elements.")
        out = []
        if len(parts) < 2:
            raise ValueError("mixlake writes ndarray columns with a fixed dtype (ndarray:<dtype>)")
        if len(parts) < 3:
            shape = np.array(arr.shape, np.int64)
            m = int(shape.max())
            sd = 0 if m < 1 << 8 else 1 if m < 1 << 16 else 2 if m < 1 << 32 else 3
            out.append(bytes([(len(arr.shape) << 2) | sd]))
            out.append(shape.astype(SHAPE_DTYPES[sd]).tobytes())
        out.append(arr.tobytes())
        return b"".join(out)
    raise ValueError(f"unsupported MDS encoding {encoding!r}")


def file_hash(algo: str, data: bytes) -> str:
    if algo.startswith("xxh"):
        return getattr(xxhash, algo)(data).hexdigest()
    return hashlib.new(algo, data).hexdigest()


def compress(compression: str, data: bytes) -> bytes:
    algo, _, level = compression.partition(":")
    if algo != "zstd":
        raise ValueError(f"unsupported compression {compression!r} (mixlake writes zstd)")
    import zstd  # the package streaming uses: same frames, byte for byte

    return zstd.compress(data, int(level) if level else 3)


class ShardWriter:
    """Writes MDS shards for one directory and returns their index entries; each shard goes to disk as it closes
    (``sink(basename, data)``), so nothing accumulates beyond one shard in memory."""

    def __init__(self, columns: dict[str, str], sink: Callable[[str, bytes], None], compression: str | None = "zstd",
                 hashes: list[str] | None = None, size_limit: int | None = 1 << 26) -> None:
        hashes = hashes or []
        if list(hashes) != sorted(hashes):
            raise ValueError("hashes must be sorted (as streaming requires)")
        if size_limit is not None and not 0 < size_limit < 2**32:
            raise ValueError("size_limit must be in (0, 2**32)")
        self.names = sorted(columns)
        self.encodings = [columns[n] for n in self.names]
        self.sizes = [column_size(e) for e in self.encodings]
        self.compression = compression or None
        self.hashes = list(hashes)
        self.size_limit = size_limit
        self.sink = sink
        self.config = {"version": 2, "format": "mds", "compression": self.compression, "hashes": self.hashes,
                       "size_limit": self.size_limit, "column_names": self.names,
                       "column_encodings": self.encodings, "column_sizes": self.sizes}
        self.config_data = json.dumps(self.config, sort_keys=True).encode("utf-8")
        self.shards: list[dict[str, Any]] = []
        self._samples: list[bytes] = []
        self._size = 8 + len(self.config_data)

    def encode_sample(self, sample: dict[str, Any]) -> bytes:
        sizes, data = [], []
        for name, enc, size in zip(self.names, self.encodings, self.sizes, strict=True):
            datum = encode_value(enc, sample[name])
            if size is None:
                sizes.append(len(datum))
            elif size != len(datum):
                raise KeyError(f"column {name!r}: expected {size} bytes for {enc}, got {len(datum)}")
            data.append(datum)
        return np.array(sizes, np.uint32).tobytes() + b"".join(data)

    def write(self, sample: dict[str, Any]) -> None:
        encoded = self.encode_sample(sample)
        size = len(encoded) + 4
        if self.size_limit and 8 + len(self.config_data) + size > self.size_limit:
            raise ValueError(f"a sample of {len(encoded):,} bytes does not fit in one shard of size_limit "
                             f"{self.size_limit:,} bytes; raise mds.size_limit")
        if self.size_limit and self.size_limit < self._size + size:
            self.flush()
        self._samples.append(encoded)
        self._size += size

    def flush(self) -> None:
        if not self._samples:
            return
        n = len(self.shards)
        raw_name = f"shard.{n:05}.mds"
        sizes = [len(s) for s in self._samples]
        offsets = np.array([0, *sizes]).cumsum().astype(np.uint32)
        offsets += 4 + 4 * (len(sizes) + 1) + len(self.config_data)
        raw = np.uint32(len(sizes)).tobytes() + offsets.tobytes() + self.config_data + b"".join(self._samples)
        raw_info = {"basename": raw_name, "bytes": len(raw), "hashes": {a: file_hash(a, raw) for a in self.hashes}}
        zip_info = None
        if self.compression:
            zname = f"{raw_name}.{self.compression.split(':')[0]}"
            zdata = compress(self.compression, raw)
            zip_info = {"basename": zname, "bytes": len(zdata),
                        "hashes": {a: file_hash(a, zdata) for a in self.hashes}}
            self.sink(zname, zdata)
        else:
            self.sink(raw_name, raw)
        self.shards.append({"samples": len(sizes), "raw_data": raw_info, "zip_data": zip_info, **self.config})
        self._samples = []
        self._size = 8 + len(self.config_data)

    def finish(self) -> list[dict[str, Any]]:
        self.flush()
        return self.shards


def index_bytes(shards: list[dict[str, Any]]) -> bytes:
    """An MDS ``index.json``: ``{"version": 2, "shards": [...]}`` (keys sorted, as ``streaming`` writes it)."""
    return json.dumps({"version": 2, "shards": shards}, sort_keys=True).encode()


def write_index(directory: str, shards: list[dict[str, Any]]) -> None:
    with open(os.path.join(directory, "index.json"), "wb") as f:
        f.write(index_bytes(shards))


def prefixed(shards: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Index entries with ``prefix/`` before every basename (merging part directories under one root index)."""
    out = []
    for s in shards:
        s = json.loads(json.dumps(s))
        for key in ("raw_data", "zip_data"):
            if s.get(key):
                s[key]["basename"] = f"{prefix}/{s[key]['basename']}"
        out.append(s)
    return out
