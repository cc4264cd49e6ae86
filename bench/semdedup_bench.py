"""Semantic dedup throughput, measured in one Spark (local[2]) run against a named baseline.

* per embedder (wordllama, lsa, word2vec): the embedding pass alone over the corpus (written to ``noop``;
  fitted embedders include their fit on the fit sample) — documents/s and MB/s of text;
* the ``semdedup`` stage as a user runs it, per embedder in ``--stage-embedders``: first run (embeds everything,
  clusters, compares, writes every table) and a rerun with another eps sweep (re-clusters, re-uses the stored
  embeddings) — wall seconds, documents removed at the configured eps;
* baseline: dedup's MinHash signature pass over the same documents (word 5-grams, 120 permutations, ``noop``).

Writes ``bench/results/semdedup.json``. ``python bench/semdedup_bench.py [--docs 90000] [--lake DIR]`` (``--lake``:
a lake whose ``documents`` table to use instead of generating the sample at ``--docs``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from mixlake.config import SparkConfig
from mixlake.spark import get_spark


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=90_000)
    ap.add_argument("--lake", default=None)
    ap.add_argument("--embedders", default="wordllama,lsa,word2vec")
    ap.add_argument("--stage-embedders", default="wordllama,lsa")
    ap.add_argument("--max-docs", type=int, default=None, help="the first N documents by doc_id")

    args = ap.parse_args()
    spark = get_spark(SparkConfig(conf={"spark.sql.shuffle.partitions": "16", "spark.ui.showConsoleProgress": "false",
                                        "spark.databricks.delta.snapshotPartitions": "2"}))
    from dedup_bench import _text_mb, _timed_noop, corpus

    from mixlake.config import compose
    from mixlake.dedup.minhash import SIGNATURE_DDL, MinHashParams, signature_udf
    from mixlake.delta import table_path
    from mixlake.semdedup.embed import embed
    from mixlake.stages import semdedup
    from mixlake.text import NormalizeConfig

    if args.lake:
        lake = args.lake
        docs = spark.read.format("delta").load(table_path(lake, "documents"))
    else:
        docs, base = corpus(spark, args.docs)
        lake = base.lake
    docs = docs.select("doc_id", "source", "text", "n_chars")
    if args.max_docs:
        docs = docs.orderBy("doc_id").limit(args.max_docs)
    docs = docs.localCheckpoint()
    n = docs.count()
    mb = _text_mb(docs)
    print(f"semdedup bench: {n:,} documents, {mb:.1f} MB of text")
    out: dict[str, Any] = {"documents": n, "text_mb": round(mb, 2), "embedding": {}, "stage": {}}
    p = MinHashParams(ngram=5, bands=20, rows=6, seed=42, normalize=NormalizeConfig())
    sig = docs.select("doc_id", "text").mapInArrow(signature_udf(p), SIGNATURE_DDL)
    s = _timed_noop(sig)
    out["baseline_minhash_signatures"] = {"seconds": round(s, 2), "docs_per_s": round(n / s, 1),
                                          "mb_per_s": round(mb / s, 2)}
    print(f"  baseline: MinHash signatures {s:.1f}s ({n / s:,.0f} docs/s, {mb / s:.1f} MB/s)")
    base_cfg = compose([f"lake={lake}", "sample.enabled=false", "stages=[ingest,semdedup]"])
    for name in args.embedders.split(","):
        part, n_part, mb_part = docs, n, mb
        s = _timed_noop(embed(part, dataclasses.replace(base_cfg.semdedup, embedder=name)))
        base_rate = n / out["baseline_minhash_signatures"]["seconds"]
        out["embedding"][name] = {"documents": n_part, "seconds": round(s, 2), "docs_per_s": round(n_part / s, 1),
                                  "mb_per_s": round(mb_part / s, 2), "vs_minhash": round(n_part / s / base_rate, 3)}
        print(f"  embed {name:<10} {n_part:,} docs {s:7.1f}s  {n_part / s:8,.0f} docs/s  {mb_part / s:6.2f} MB/s "
              f"({n_part / s / base_rate:.2f}x MinHash signatures)")
    for name in filter(None, args.stage_embedders.split(",")):
        shutil.rmtree(table_path(lake, "semdedup_embeddings"), ignore_errors=True)
        cfg = compose([f"lake={lake}", "sample.enabled=false", "stages=[ingest,semdedup]", f"semdedup.embedder={name}"])
        t = time.perf_counter()
        first = semdedup.run(spark, cfg)
        t1 = time.perf_counter() - t
        cfg2 = compose([f"lake={lake}", "sample.enabled=false", "stages=[ingest,semdedup]", f"semdedup.embedder={name}",
                        "semdedup.eps_sweep=[0.01,0.03,0.1,0.2]"])
        t = time.perf_counter()
        again = semdedup.run(spark, cfg2)
        t2 = time.perf_counter() - t
        out["stage"][name] = {"first_seconds": round(t1, 1), "rerun_seconds": round(t2, 1),
                              "rerun_embedded": again.details["embedded"], "removed": first.dropped,
                              "k": first.details["k"], "largest_cluster": first.details["largest_cluster"],
                              "phases": first.details["seconds"], "sweep": first.details["sweep"]}
        print(f"  stage {name:<10} first {t1:6.1f}s (phases {first.details['seconds']}), rerun with another sweep "
              f"{t2:6.1f}s (embedded {again.details['embedded']}); removed {first.dropped:,} at eps "
              f"{cfg.semdedup.eps}, k={first.details['k']}, largest cluster {first.details['largest_cluster']}")
    res = Path(__file__).resolve().parent / "results"
    os.makedirs(res, exist_ok=True)
    (res / "semdedup.json").write_text(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
