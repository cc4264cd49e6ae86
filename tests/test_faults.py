"""Transient storage faults are retried, not quarantined (issue 14): a TCP proxy in front of a real moto S3 server
resets the connection on chosen GETs of one object, so pyarrow's S3 client sees real connection resets.

A fault in the middle of a gzip file used to surface as an ``OSError`` that ingest filed as ``corrupt_compression``
— one quarantine row, the rest of the file silently skipped, Spark never told. Now the reader task fails, Spark
retries it, and the output equals a clean run's; a fault that does not go away fails the job loudly.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import struct
import subprocess
import sys
import threading

import pytest
from lake_compare import lake_differences

from conftest import ACCESS_KEY, BUCKET, REPO, compose, run_env
from mixlake.delta import table_exists
from mixlake.stages import ingest

pytestmark = [pytest.mark.slow, pytest.mark.s3]


class FlakyProxy:
    """Forwards 127.0.0.1:<port> to the S3 server; resets the connection on GETs of ``key`` number ``first`` ..
    ``first + failures - 1`` (1-based, counted over the whole run)."""

    def __init__(self, upstream_port: int, key: str, first: int, failures: int) -> None:
        self.upstream_port, self.key = upstream_port, key.encode()
        self.first, self.failures = first, failures
        self.gets = 0
        self.resets = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _fault(self, data: bytes) -> bool:
        line = data.split(b"\r\n", 1)[0]
        if not (line.startswith(b"GET ") and self.key in line):
            return False
        with self.lock:
            self.gets += 1
            if self.first <= self.gets < self.first + self.failures:
                self.resets += 1
                return True
        return False

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))

        def back() -> None:
            try:
                while data := upstream.recv(1 << 16):
                    client.sendall(data)
            except OSError:
                pass
            finally:
                client.close()

        threading.Thread(target=back, daemon=True).start()
        try:
            while data := client.recv(1 << 16):
                if self._fault(data):
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self.server.close()


def _corpus(tmp_path) -> dict[str, bytes]:
    rng = random.Random(14)
    words = [f"w{i}" for i in range(5000)]

    def doc(i: int) -> bytes:
        return json.dumps({"id": i, "text": " ".join(rng.choice(words) for _ in range(400))}).encode()

    # ~4 MB compressed: the reader's 1 MiB buffer makes several ranged GETs, so a fault lands mid-file
    big = gzip.compress(b"\n".join(doc(i) for i in range(2500)) + b"\n")
    small = gzip.compress(b"\n".join(doc(i) for i in range(10_000, 10_050)) + b"\n")
    return {"faults/big.jsonl.gz": big, "faults/small.jsonl.gz": small}


def _ingest_cmd(lake, endpoint: str, secret: str, max_attempts: int) -> list[str]:
    return [sys.executable, str(REPO / "jobs" / "ingest.py"), f"lake={lake}", "sample.enabled=false",
            f"+sources.web.path=s3://{BUCKET}/faults/*.jsonl.gz", "+sources.web.format=jsonl",
            "+sources.web.id_field=id", f"storage.s3.endpoint={endpoint}", f"storage.s3.access_key={ACCESS_KEY}",
            f"storage.s3.secret_key={secret}", f"storage.s3.max_attempts={max_attempts}", "spark.s3=false",
            "spark.master=local[2,4]"]  # 4 attempts per task, as on a cluster (local mode's default is 1)


def test_storage_faults_are_retried_and_the_output_equals_a_clean_run(s3_server, spark, tmp_path):
    endpoint, client, secret = s3_server
    for key, blob in _corpus(tmp_path).items():
        client.put_object(Bucket=BUCKET, Key=key, Body=blob)
    clean = tmp_path / "clean"
    ingest.run(spark, compose(*_ingest_cmd(clean, endpoint, secret, 3)[2:-2]))

    upstream = int(endpoint.rsplit(":", 1)[1])
    env = {k: v for k, v in run_env().items() if not k.startswith("AWS_")}

    def ingest_through(proxy: FlakyProxy, lake) -> tuple[int, str]:
        try:
            p = subprocess.run(_ingest_cmd(lake, f"http://127.0.0.1:{proxy.port}", secret, 2), capture_output=True,
                               text=True, timeout=600, env=env, cwd=tmp_path)
        finally:
            proxy.close()
        return p.returncode, p.stdout + p.stderr

    # the 2nd GET of the big file (after 1 MiB was read and decompressed) and the retry of it: pyarrow's client
    # gives up after max_attempts=2, the task fails, Spark's 2nd attempt reads the file whole
    proxy = FlakyProxy(upstream, "big.jsonl.gz", first=2, failures=2)
    faulty = tmp_path / "faulty"
    code, logs = ingest_through(proxy, faulty)
    assert code == 0, logs[-5000:]
    assert proxy.resets == 2 and "SourceReadError" in logs  # the task really failed once and was retried
    assert lake_differences(str(clean), str(faulty), only_common_tables=True) == []
    docs = spark.read.format("delta").load(str(faulty / "tables" / "documents"))
    assert docs.count() == 2550
    assert spark.read.format("delta").load(str(faulty / "tables" / "quarantine")).count() == 0

    # a fault that does not go away: the job fails loudly, naming the file; nothing is published
    proxy = FlakyProxy(upstream, "big.jsonl.gz", first=1, failures=10**6)
    broken = tmp_path / "broken"
    code, logs = ingest_through(proxy, broken)
    assert code != 0
    assert "SourceReadError" in logs and "big.jsonl.gz" in logs
    assert proxy.resets >= 8  # 4 task attempts x 2 client attempts
    assert not table_exists(spark, str(broken / "tables" / "documents"))  # no Delta commit

