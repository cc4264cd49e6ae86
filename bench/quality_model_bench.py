"""Learned-quality throughput and a sanity check on real web text, in one Spark (local[2]) run.

* **training**: the Spark ML pipeline (``RegexTokenizer`` → ``HashingTF`` 2^20 → ``LogisticRegression``) fitted on
  ~100K sample documents (labels: ``quality_model.positive_sources`` vs the rest) read from Delta — seconds;
* **scoring**: ``quality_model_score`` for every document (``noop`` sink) — docs/s; baseline in the same run: the
  tokenizer + HashingTF pass alone (what scoring costs before the model's dot product);
* **the stage as a user runs it**: ``mixlake quality`` with ``quality_model.enabled=true`` (a model trained on a
  balanced sample, AUC on the held-out split, scores, Pareto selection, Delta writes) vs the rule-based stage alone;
* **real web text**: the model trained on the sample scores the 20 CCNet documents of
  ``../shared/realdata/jsonl/dolma-ccnet`` (CCNet ``head`` bucket, with perplexities) and the 37 real pages of
  ``../shared/realdata/warc/dolma`` (raw crawl, extracted as ingest does): mean score per group and the Spearman
  correlation of score with CCNet perplexity. All 20 CCNet documents are in the ``head`` bucket, so the bucket table
  has one row; the perplexity correlation over 20 documents is a weak signal, reported as such.

Writes ``bench/results/quality_model.json``. ``python bench/quality_model_bench.py [--docs 100000]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

from mixlake.config import SparkConfig
from mixlake.spark import get_spark

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def _real_web(spark: Any) -> Any:
    """(doc_id, text, group, perplexity) of the CCNet documents and the dolma WARC pages."""
    from mixlake.config import SourceConfig
    from mixlake.ingest.readers import read_records

    rows: list[tuple[str, str, str, float | None]] = []
    for p in sorted((REALDATA / "jsonl" / "dolma-ccnet").glob("*.jsonl.gz")):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                m = d["metadata"]
                rows.append((d["id"], d["text"], f"ccnet_{m['bucket']}", float(m["perplexity"])))
    src = SourceConfig(path="", format="warc", name="crawl")
    for p in sorted((REALDATA / "warc" / "dolma").glob("*.warc.gz")):
        for r in read_records(str(p), p.name, src, 64):
            if r.kind == "doc":
                rows.append((r.source_id, r.text, "dolma_warc_raw", None))
    return spark.createDataFrame(rows, "doc_id string, text string, grp string, perplexity double")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--no-stage", action="store_true", help="skip the whole-stage runs (training and scoring only)")
    args = ap.parse_args()
    spark = get_spark(SparkConfig(conf={"spark.sql.shuffle.partitions": "16", "spark.ui.showConsoleProgress": "false",
                                        "spark.databricks.delta.snapshotPartitions": "2"}))
    from dedup_bench import _timed_noop, corpus
    from pyspark.ml import Pipeline
    from pyspark.sql import functions as F

    from mixlake.config import compose
    from mixlake.delta import table_path
    from mixlake.pipeline import run_pipeline
    from mixlake.quality.model import pipeline, score

    docs, base = corpus(spark, args.docs)
    n = docs.count()
    qm = base.quality_model
    out: dict[str, Any] = {"documents": n}
    print(f"corpus: {n:,} documents (local[2])")

    labelled = docs.select("doc_id", "text", F.col("source").isin(qm.positive_sources).cast("double").alias("label"))
    t = time.perf_counter()
    model = pipeline(qm).fit(labelled)
    s = time.perf_counter() - t
    out["training"] = {"documents": n, "seconds": s}
    print(f"training on {n:,} documents (read + fit)   {s:7.1f}s")

    s = _timed_noop(score(model, docs.select("doc_id", "text")))
    out["scoring"] = {"seconds": s, "docs_per_s": n / s}
    print(f"scoring (noop)                         {n / s:9,.0f} docs/s  ({s:.1f}s)")
    features = Pipeline(stages=pipeline(qm).getStages()[:2]).fit(docs)
    s = _timed_noop(features.transform(docs.select("doc_id", "text")).select("doc_id", "features"))
    out["baseline_features"] = {"seconds": s, "docs_per_s": n / s}
    print(f"baseline: tokenizer + HashingTF (noop) {n / s:9,.0f} docs/s  ({s:.1f}s)")

    common = [f"lake={base.lake}", f"sample.scale={base.sample.scale}", f"sample.seed={base.sample.seed}"]
    stage: dict[str, Any] = {}
    if args.no_stage:
        _write(out)
        return 0
    for name, extra in (("rules", []), ("rules+model", ["quality_model.enabled=true"])):
        cfg = compose([*common, *extra])
        t = time.perf_counter()
        res = run_pipeline(spark, cfg, only=["quality"])[-1]
        s = time.perf_counter() - t
        stage[name] = {"seconds": s, "docs_per_s": n / s, "dropped": res.dropped}
        print(f"quality stage, {name:<12} (whole job) {n / s:9,.0f} docs/s  ({s:.1f}s, dropped {res.dropped:,})")
    out["stage"] = stage
    print(f"ratio model stage / rules stage: {stage['rules+model']['seconds'] / stage['rules']['seconds']:.2f}x time")
    metrics = json.loads(spark.read.format("delta").load(table_path(base.lake, "quality_model")).first().metrics)
    out["model_metrics"] = {k: metrics.get(k) for k in ("auc", "precision", "recall", "holdout_docs", "train_docs")}
    print(f"held-out AUC {metrics['auc']:.4f}, precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f} "
          f"at {metrics['threshold']}")

    from pyspark.ml import PipelineModel

    trained = PipelineModel.load(os.path.join(saved_model_dir(spark, base.lake), "model"))
    real = score(trained, _real_web(spark)).toPandas()
    groups = real.groupby("grp")["quality_model_score"].agg(["count", "mean", "median"]).reset_index()
    out["real_web"] = groups.to_dict(orient="records")
    print("real web text, scored by the model trained on the sample:")
    for r in out["real_web"]:
        print(f"  {r['grp']:<16} n={r['count']:3d}  mean {r['mean']:.3f}  median {r['median']:.3f}")
    cc = real[real.grp.str.startswith("ccnet")]
    rho = float(cc["quality_model_score"].corr(cc["perplexity"], method="spearman"))
    out["ccnet_spearman_score_vs_perplexity"] = rho
    print(f"  Spearman(score, CCNet perplexity) over {len(cc)} head documents: {rho:+.3f} "
          "(negative = lower perplexity scores higher)")
    _write(out)
    return 0


def _write(out: dict[str, Any]) -> None:
    from dedup_bench import WORK

    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "quality_model.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"results: bench/results/quality_model.json (work dir {WORK})")


def saved_model_dir(spark: Any, lake: str) -> str:
    """Where the quality stage saved its model (the ``quality_model`` table's ``path``)."""
    from mixlake.delta import table_path

    path = str(spark.read.format("delta").load(table_path(lake, "quality_model")).first().path)
    return path if "://" in path or path.startswith("/") else os.path.join(lake, path)


if __name__ == "__main__":
    raise SystemExit(main())
