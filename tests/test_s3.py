"""Sources, the Delta lake and the MDS streams on an S3 API endpoint: a real moto server on 127.0.0.1.

The sample corpus is uploaded to ``s3://mixlake-test/sample/``; the pipeline runs with ``lake=s3a://.../lake``
(Delta through Hadoop S3A from hadoop-aws) and writes MDS shards to ``s3://.../lake/mds``, which ``streaming``
reads with a remote + local cache. Every table and every MDS byte must equal the local-mode run's, and the secret
key passed in the config must not appear in the logs, the runs table or the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lake_compare import Lake, lake_differences

from conftest import ACCESS_KEY, BUCKET, MODEL_ARGS, REPO, SAMPLE_ARGS, compose, run_env

pytestmark = [pytest.mark.slow, pytest.mark.s3]



def test_pipeline_on_s3_equals_local(s3_server, sample_dir, local_pipeline_lake, tmp_path, monkeypatch):
    endpoint, client, secret = s3_server
    for path in sorted(sample_dir.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"sample/{path.relative_to(sample_dir)}")
    from dataclasses import asdict

    sources = compose(*SAMPLE_ARGS, f"sample.dir=s3://{BUCKET}/sample").sample.sources()
    overrides = [f"+sources.{name}.{k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"
                 for name, src in sources.items() for k, v in asdict(src).items() if k != "name"]
    lake = f"s3a://{BUCKET}/lake"
    cache = tmp_path / "cache"
    cmd = [sys.executable, str(REPO / "jobs" / "pipeline.py"), f"lake={lake}", "sample.enabled=false", *overrides,
           "stages=[ingest,quality,dedup,spans,decontam,tokens,mix,write_mds,verify_mds,report]",
           *(MODEL_ARGS or ["budget.tokens=1250000"]), f"+decontam.evals.sample_eval.path=s3://{BUCKET}/sample/eval/sample_eval.jsonl",
           "+decontam.evals.sample_eval.id_field=id",
           f"storage.s3.endpoint={endpoint}", f"storage.s3.access_key={ACCESS_KEY}",
           f"storage.s3.secret_key={secret}", f"mds.local_cache={cache}", f"mds.remote=s3://{BUCKET}/lake/mds",
           "verify.full=true"]  # verify_mds's shard checks run on the executors over S3; the read-back from S3
    env = {k: v for k, v in run_env().items() if not k.startswith("AWS_")}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path)
    logs = p.stdout + p.stderr
    assert p.returncode == 0, logs[-5000:]
    assert "[mixlake] verify_mds" in logs

    options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
               "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"}
    remote = Lake(f"s3://{BUCKET}/lake", options, client)
    local_sample = str(sample_dir)
    # same rows; only the source file URIs in ingest_files/quarantine differ (s3://bucket/sample vs the local dir)
    assert lake_differences(str(local_pipeline_lake), remote, only_common_tables=True,
                            normalize=lambda r: r.replace(f"s3://{BUCKET}/sample", local_sample)) == []
    assert remote.tables() == set(os.listdir(local_pipeline_lake / "tables")) - {"dedup_eval"}

    # streaming reads a stream from S3 into a local cache, as a trainer would
    from deltalake import DeltaTable
    from streaming import StreamingDataset

    for k, v in {"S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret}.items():
        monkeypatch.setenv(k, v)
    ds = StreamingDataset(remote=f"s3://{BUCKET}/lake/mds/web", local=str(tmp_path / "trainer-cache"),
                          shuffle=False, batch_size=1)
    manifest = DeltaTable(f"s3://{BUCKET}/lake/tables/mds_manifest", storage_options=options).to_pyarrow_table()
    assert len(ds) == sum(r["samples"] for r in manifest.to_pylist() if r["source"] == "web")
    assert len(ds[0]["tokens"]) == 2048

    # the secret never lands in the logs, the runs table or the report; the runs table shows it masked
    assert secret not in logs
    runs = DeltaTable(f"s3://{BUCKET}/lake/tables/runs", storage_options=options).to_pyarrow_table().to_pylist()
    assert len(runs) == 10 and not any(secret in json.dumps(r, default=str) for r in runs)
    assert {json.loads(r["config"])["storage"]["s3"]["secret_key"] for r in runs} == {"***"}
    assert remote.files("eval_clean") == Lake(str(local_pipeline_lake)).files("eval_clean") != {}
    report = remote.files("report")
    assert "index.html" in report and not any(secret.encode() in v for v in report.values())
