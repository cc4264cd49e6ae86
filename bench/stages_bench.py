"""Quality, sentence splitting, span removal and MDS writing, measured in one Spark (local[2]) run.

* quality stage: signals + rules over the corpus (documents/s);
* sentence splitting: mixlake's regex splitter (documents/s, single process). Spark NLP's SentenceDetector — the
  other candidate — cannot run here: its ``spark-nlp_2.13`` jar is not on the Maven Central this project builds from;
  the row says so instead of a number;
* span removal: span hashing + corpus counts + removal (documents/s);
* MDS writing (text format, same DataFrame): mixlake's writer vs ``streaming.base.converters.dataframe_to_mds``
  (MB/s and samples/s, and the ratio).

Writes ``bench/results/stages.json``.  ``python bench/stages_bench.py [--docs 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from typing import Any

from pyspark.sql import functions as F

from mixlake.config import SparkConfig
from mixlake.mds.write import MDSConfig, write_streams
from mixlake.quality.rules import apply_rules
from mixlake.quality.signals import quality_signals
from mixlake.spans.spans import SpansConfig, remove_spans, span_counts, span_occurrences, span_removals, split_sentences
from mixlake.spark import get_spark
from mixlake.tokens.tokenizer import TokenizerConfig

WORK = os.environ.get("MIXLAKE_BENCH_DIR", "/tmp/mixlake-bench")


def _noop(df: Any) -> float:
    t = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    args = ap.parse_args()
    spark = get_spark(SparkConfig(conf={"spark.sql.shuffle.partitions": "16", "spark.ui.showConsoleProgress": "false",
                                        "spark.databricks.delta.snapshotPartitions": "2"}))
    from dedup_bench import corpus  # the same generated corpora as the dedup benchmark

    docs, _ = corpus(spark, args.docs)
    docs = docs.repartition(8).cache()
    n = docs.count()
    mb = float(docs.agg(F.sum(F.octet_length("text"))).first()[0]) / 1e6
    out: dict[str, Any] = {"documents": n, "mb": mb}
    from mixlake.config import compose

    qc = compose([]).quality
    s = _noop(apply_rules(quality_signals(docs, qc.langid), qc))
    out["quality"] = {"seconds": s, "docs_per_s": n / s}
    print(f"quality stage          {n / s:10.0f} docs/s  ({s:.0f}s)")
    texts = [r.text for r in docs.select("text").limit(20_000).collect()]
    t = time.perf_counter()
    for x in texts:
        split_sentences(x)
    s = time.perf_counter() - t
    out["sentences_regex"] = {"docs_per_s": len(texts) / s, "documents": len(texts)}
    out["sentences_spark_nlp"] = {"docs_per_s": None, "note": "spark-nlp_2.13 jar not available from Maven Central"}
    print(f"sentences (regex)      {len(texts) / s:10.0f} docs/s (1 process); Spark NLP: jar not available here")
    sc = SpansConfig()
    occ = span_occurrences(docs, sc)
    s = _noop(remove_spans(docs, span_removals(occ, span_counts(occ, sc), sc)))
    out["spans"] = {"seconds": s, "docs_per_s": n / s}
    print(f"span removal           {n / s:10.0f} docs/s  ({s:.0f}s)")
    root = f"{WORK}/mds-bench"
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    manifest = write_streams(docs.select("doc_id", "source", "text"), MDSConfig(format="text", partitions=4),
                             TokenizerConfig(), f"{root}/mixlake", {})
    s_own = time.perf_counter() - t
    samples = sum(r["samples"] for r in manifest)
    from streaming.base.converters import dataframe_to_mds

    t = time.perf_counter()
    dataframe_to_mds(docs.select("text").repartition(4),
                     merge_index=True, mds_kwargs={"out": f"{root}/converter", "columns": {"text": "str"},
                                                   "compression": "zstd", "hashes": ["sha1", "xxh3_64"]})
    s_ref = time.perf_counter() - t
    out["mds"] = {"mixlake": {"seconds": s_own, "mb_per_s": mb / s_own, "samples_per_s": samples / s_own},
                  "dataframe_to_mds": {"seconds": s_ref, "mb_per_s": mb / s_ref, "samples_per_s": n / s_ref},
                  "ratio": s_ref / s_own}
    print(f"MDS text, mixlake      {mb / s_own:10.1f} MB/s  {samples / s_own:8.0f} samples/s  ({s_own:.0f}s)")
    print(f"MDS text, dataframe_to_mds {mb / s_ref:6.1f} MB/s  {n / s_ref:8.0f} samples/s  ({s_ref:.0f}s); "
          f"ratio {s_ref / s_own:.2f}x")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "stages.json"), "w") as f:
        json.dump(out, f, indent=1)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
