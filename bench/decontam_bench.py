"""Decontamination throughput, measured in one Spark (local[2]) run against a named baseline.

* index: GSM8K (1,319 items) + HumanEval (164) from ``../shared/realdata/eval`` + the sample's planted eval set —
  build time, n-grams, MB;
* ``decontam`` stage as a user runs it (``mixlake decontam`` on a lake whose ``documents`` table holds the sample
  corpus): wall seconds and MB/s of corpus text, Delta writes and eval files included;
* its matching pass alone (hashing + lookup + hit rows, written to ``noop``);
* baseline: dedup's MinHash signature pass over the same documents (word 5-gram hashing + 120 permutations,
  ``noop``) — decontamination is a hash lookup and should cost about as much as shingling.

Writes ``bench/results/decontam.json``. ``python bench/decontam_bench.py [--docs 50000]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from mixlake.config import SparkConfig
from mixlake.spark import get_spark

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "eval"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=50_000)
    args = ap.parse_args()
    spark = get_spark(SparkConfig(conf={"spark.sql.shuffle.partitions": "16", "spark.ui.showConsoleProgress": "false",
                                        "spark.databricks.delta.snapshotPartitions": "2"}))
    from dedup_bench import WORK, _text_mb, _timed_noop, corpus

    from mixlake.config import compose
    from mixlake.decontam.decontam import find_hits
    from mixlake.decontam.index import load_index
    from mixlake.dedup.minhash import SIGNATURE_DDL, MinHashParams, signature_udf
    from mixlake.pipeline import run_pipeline

    docs, base = corpus(spark, args.docs)
    n = docs.count()
    mb = _text_mb(docs)
    evals = [f"+decontam.evals.gsm8k.path={REALDATA}/gsm8k/test.jsonl",
             f"+decontam.evals.humaneval.path={REALDATA}/humaneval/HumanEval.jsonl.gz",
             "+decontam.evals.humaneval.fields=[prompt,canonical_solution]",
             "+decontam.evals.humaneval.id_field=task_id"]
    cfg = compose([f"lake={base.lake}", f"sample.scale={base.sample.scale}", f"sample.seed={base.sample.seed}",
                   "stages=[ingest,decontam]", *evals])
    out: dict[str, Any] = {"documents": n, "mb": mb}
    t = time.perf_counter()
    index = load_index(cfg.decontam, cfg.s3)
    build = time.perf_counter() - t
    out["index"] = {"items": len(index.items), "ngrams": index.n_ngrams(), "mb": index.nbytes() / 1e6,
                    "build_seconds": build}
    print(f"index: {len(index.items):,} items, {index.n_ngrams():,} n-grams, {index.nbytes() / 1e6:.1f} MB, "
          f"built in {build:.2f}s")
    print(f"corpus: {n:,} documents, {mb:.1f} MB of text (local[2])")

    # the first Python pass of a session also starts the Python workers and imports numpy/pyarrow/mixlake in them:
    # timed apart (cold), then again (warm) — the warm pass is what a stage in a running pipeline sees
    s = _timed_noop(find_hits(docs, index, cfg.decontam))
    out["matching_cold"] = {"seconds": s, "mb_per_s": mb / s}
    print(f"matching pass (noop), cold        {mb / s:7.1f} MB/s  ({s:.1f}s)")
    s = _timed_noop(find_hits(docs, index, cfg.decontam))
    out["matching"] = {"seconds": s, "mb_per_s": mb / s}
    print(f"matching pass (noop), warm        {mb / s:7.1f} MB/s  ({s:.1f}s)")

    d = cfg.dedup
    p = MinHashParams(d.ngram, d.bands, d.rows, d.seed, d.normalize)
    s = _timed_noop(docs.select("doc_id", "text").mapInArrow(signature_udf(p), SIGNATURE_DDL))
    out["baseline_minhash"] = {"seconds": s, "mb_per_s": mb / s}
    print(f"baseline: MinHash signatures (noop) {mb / s:7.1f} MB/s  ({s:.1f}s)")

    t = time.perf_counter()
    res = run_pipeline(spark, cfg, only=["decontam"])[-1]
    s = time.perf_counter() - t
    out["stage"] = {"seconds": s, "mb_per_s": mb / s, "dropped": res.dropped, "tasks": res.details["tasks"]}
    print(f"decontam stage (whole job)        {mb / s:7.1f} MB/s  ({s:.1f}s)")
    print(f"ratio stage / MinHash baseline: {out['stage']['mb_per_s'] / out['baseline_minhash']['mb_per_s']:.2f}x; "
          f"matching / MinHash: {out['matching']['mb_per_s'] / out['baseline_minhash']['mb_per_s']:.2f}x")
    for task in res.details["tasks"]:
        print(f"  {task['task']}: {task['items_contaminated']}/{task['items']} items contaminated")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "decontam.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"results: bench/results/decontam.json (work dir {WORK})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
