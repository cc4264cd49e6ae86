"""Compare two lakes: every Delta table's contents (as sorted rows, read with delta-rs) and every MDS file's bytes.

A lake is a local directory or an ``s3://`` URI (then ``storage_options`` for delta-rs and a boto3 client reach it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

# the runs table records timings, hosts and the master: it differs between any two runs by design
VOLATILE_TABLES = {"runs"}


class Lake:
    def __init__(self, root: str, storage_options: dict[str, str] | None = None, s3_client=None) -> None:
        self.root, self.options, self.s3 = root.rstrip("/"), storage_options, s3_client

    def _bucket_key(self, sub: str) -> tuple[str, str]:
        bucket, _, key = self.root.split("://", 1)[1].partition("/")
        return bucket, f"{key}/{sub}".strip("/") + "/"

    def tables(self) -> set[str]:
        if self.s3 is None:
            return set(os.listdir(f"{self.root}/tables"))
        bucket, prefix = self._bucket_key("tables")
        resp = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
        return {p["Prefix"][len(prefix):].strip("/") for p in resp.get("CommonPrefixes", [])}

    def rows(self, name: str) -> tuple[str, list[str]]:
        from deltalake import DeltaTable

        t = DeltaTable(f"{self.root}/tables/{name}", storage_options=self.options).to_pyarrow_table()
        return str(t.schema), sorted(json.dumps(r, sort_keys=True, default=repr) for r in t.to_pylist())

    def files(self, sub: str) -> dict[str, bytes]:
        out = {}
        if self.s3 is None:
            base = f"{self.root}/{sub}"
            for dp, _, fs in os.walk(base):
                for f in fs:
                    with open(os.path.join(dp, f), "rb") as fh:
                        out[os.path.relpath(os.path.join(dp, f), base)] = fh.read()
            return out
        bucket, prefix = self._bucket_key(sub)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                if o["Key"].endswith("/"):  # a directory marker pyarrow leaves after deleting a prefix: not a file
                    continue
                out[o["Key"][len(prefix):]] = self.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        return out


def lake_differences(a: str | Lake, b: str | Lake, only_common_tables: bool = False,
                     normalize: Callable[[str], str] = lambda r: r) -> list[str]:
    """Human-readable differences between lakes ``a`` and ``b`` (empty: same tables, same contents, same MDS).

    ``normalize`` is applied to every row (as JSON) of ``b`` before comparing (e.g. to map source file URIs).
    """
    a = a if isinstance(a, Lake) else Lake(a)
    b = b if isinstance(b, Lake) else Lake(b)
    diffs = []
    ta, tb = a.tables(), b.tables()
    if ta != tb and not only_common_tables:
        diffs.append(f"tables only in one lake: {sorted(ta ^ tb)}")
    for name in sorted((ta & tb) - VOLATILE_TABLES):
        (sa, ra), (sb, rb) = a.rows(name), b.rows(name)
        rb = sorted(normalize(r) for r in rb)
        if sa != sb:
            diffs.append(f"{name}: schemas differ")
        elif ra != rb:
            diffs.append(f"{name}: {len(set(ra) ^ set(rb))} rows differ ({len(ra)} vs {len(rb)} rows)")
    fa, fb = ({k: hashlib.sha256(v).hexdigest() for k, v in x.files("mds").items()} for x in (a, b))
    if fa != fb:
        diffs.append(f"MDS files differ: {sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))[:10]}")
    return diffs
