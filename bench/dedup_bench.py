"""Dedup benchmark, all in one Spark (local[2]) run on generated corpora.

(a) MinHash signature throughput (MB/s of text) on the same DataFrame: mixlake's batch UDF (Arrow + rensa) vs a
    text-dedup-style per-document numpy pandas UDF vs datasketch per document vs Spark MLlib ``MinHashLSH``
    (HashingTF over word 5-grams);
(b) end-to-end near-dedup wall time at 100K and 1M documents: mixlake ``deduplicate`` (exact + LSH + verification +
    components + keep rule, outputs written) vs MLlib ``approxSimilarityJoin`` at the same threshold (pairs only);
    MLlib is cancelled after ``--mllib-timeout`` seconds and reported as such;
(c) scaling ratio time(1M) / time(100K);
(d) F1 on the sample ground truth (default sample) for mixlake and for MLlib's pairs (closed into clusters).

Prints a table and writes ``bench/results/dedup.json``.
    python bench/dedup_bench.py [--sizes 100000,1000000] [--mllib-timeout 1800] [--signature-docs 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mixlake.config import SparkConfig
from mixlake.config import compose as load_config
from mixlake.dedup.config import DedupConfig
from mixlake.dedup.dedup import deduplicate, minhash_signatures, params
from mixlake.dedup.evaluate import load_gold, score_clusters, union_find
from mixlake.delta import table_path
from mixlake.pipeline import prepare_sources
from mixlake.spark import get_spark
from mixlake.stages import ingest

WORK = os.environ.get("MIXLAKE_BENCH_DIR", "/tmp/mixlake-bench")
DOCS_AT_SCALE_1 = 4_550  # documents the sample has at scale 1.0
NUM_PERM = 112
MERSENNE = np.uint64((1 << 61) - 1)


def corpus(spark: SparkSession, n_docs: int, seed: int = 1234) -> tuple[DataFrame, Any]:
    """Ingest a sample of about ``n_docs`` documents into a bench lake (cached across runs) → documents, cfg."""
    scale = round(n_docs / DOCS_AT_SCALE_1, 3)
    lake = f"{WORK}/lake-{n_docs}"
    cfg = load_config([f"lake={lake}", f"sample.scale={scale}", f"sample.seed={seed}"])
    path = table_path(lake, "documents")
    if not os.path.exists(f"{path}/_delta_log"):
        t = time.time()
        prepare_sources(cfg)
        ingest.run(spark, cfg)
        print(f"  corpus {n_docs:,}: generated + ingested in {time.time() - t:.0f}s")
    return spark.read.format("delta").load(path), cfg


def _text_mb(df: DataFrame) -> float:
    return float(df.agg(F.sum(F.octet_length("text"))).first()[0]) / 1e6


def _timed_noop(df: DataFrame) -> float:
    t = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t


# ------------------------------------------------------------------ baselines

def _textdedup_udf() -> Any:
    """text-dedup's ``embed_func``: lowercase, split on non-alphanumerics, word 5-grams, sha1-32 per shingle,
    (a*h + b) mod (2^61 - 1) per permutation with numpy, min — one document at a time."""
    import re

    from pyspark.sql.functions import pandas_udf

    rng = np.random.RandomState(42)
    a = rng.randint(1, 1 << 32, size=NUM_PERM, dtype=np.uint64)
    b = rng.randint(0, 1 << 32, size=NUM_PERM, dtype=np.uint64)
    non_alpha = re.compile(r"\W+", re.UNICODE)

    def embed(text: str) -> bytes:
        toks = [t for t in non_alpha.split(text.lower()) if t]
        grams = {" ".join(toks[i:i + 5]) for i in range(max(1, len(toks) - 4))}
        hv = np.array([int.from_bytes(hashlib.sha1(g.encode()).digest()[:4], "little") for g in grams],
                      dtype=np.uint64)
        with np.errstate(over="ignore"):
            phv = (np.outer(hv, a) + b) % MERSENNE
        return (phv.min(axis=0) & np.uint64(0xFFFFFFFF)).astype(np.uint32).tobytes()

    @pandas_udf("binary")
    def sig(texts: pd.Series) -> pd.Series:
        return texts.map(embed)

    return sig


def _datasketch_udf() -> Any:
    import re

    from datasketch import MinHash
    from pyspark.sql.functions import pandas_udf

    non_alpha = re.compile(r"\W+", re.UNICODE)

    def embed(text: str) -> bytes:
        toks = [t for t in non_alpha.split(text.lower()) if t]
        m = MinHash(num_perm=NUM_PERM, seed=42)
        m.update_batch([" ".join(toks[i:i + 5]).encode() for i in range(max(1, len(toks) - 4))])
        return m.hashvalues.astype(np.uint32).tobytes()

    @pandas_udf("binary")
    def sig(texts: pd.Series) -> pd.Series:
        return texts.map(embed)

    return sig


def _mllib_features(docs: DataFrame) -> DataFrame:
    from pyspark.ml.feature import HashingTF, NGram, RegexTokenizer

    tok = RegexTokenizer(inputCol="text", outputCol="_tokens", pattern="\\W+", toLowercase=True)
    grams = NGram(n=5, inputCol="_tokens", outputCol="_grams")
    tf = HashingTF(inputCol="_grams", outputCol="features", numFeatures=1 << 22, binary=True)
    df = tf.transform(grams.transform(tok.transform(docs)))
    return df.filter(F.size("_grams") > 0).select("doc_id", "features")


def _mllib_model(features: DataFrame, tables: int) -> Any:
    from pyspark.ml.feature import MinHashLSH

    return MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=tables, seed=42).fit(features)


def mllib_pairs(spark: SparkSession, docs: DataFrame, threshold: float, tables: int, timeout: float
                ) -> tuple[float | None, list[tuple[str, str]] | None, int | None]:
    """(seconds, pairs, n_pairs) of MLlib's approxSimilarityJoin; (None, None, None) when cancelled."""
    feats = _mllib_features(docs).cache()
    feats.count()
    model = _mllib_model(feats, tables)
    hashed = model.transform(feats).cache()
    joined = (model.approxSimilarityJoin(hashed, hashed, 1.0 - threshold, distCol="dist")
              .filter(F.col("datasetA.doc_id") < F.col("datasetB.doc_id"))
              .select(F.col("datasetA.doc_id").alias("a"), F.col("datasetB.doc_id").alias("b")))
    result: dict[str, Any] = {}
    group = f"mllib-{time.time()}"

    def work() -> None:
        spark.sparkContext.setJobGroup(group, "mllib approxSimilarityJoin", interruptOnCancel=True)
        try:
            t = time.perf_counter()
            out = f"{WORK}/mllib-pairs"
            joined.write.mode("overwrite").parquet(out)
            result["seconds"] = time.perf_counter() - t
            result["path"] = out
        except Exception as e:  # cancelled
            result["error"] = str(e)[:200]

    th = threading.Thread(target=work)
    t0 = time.perf_counter()
    th.start()
    th.join(timeout)
    if th.is_alive():
        spark.sparkContext.cancelJobGroup(group)
        th.join()
        feats.unpersist()
        hashed.unpersist()
        print(f"  MLlib approxSimilarityJoin cancelled after {time.perf_counter() - t0:.0f}s (timeout {timeout:.0f}s)")
        return None, None, None
    feats.unpersist()
    hashed.unpersist()
    if "seconds" not in result:
        return None, None, None
    pairs_df = spark.read.parquet(result["path"])
    n = pairs_df.count()
    pairs = [(r.a, r.b) for r in pairs_df.limit(2_000_000).collect()] if n <= 2_000_000 else None
    return result["seconds"], pairs, n


# ------------------------------------------------------------------ measurements

def signature_throughput(spark: SparkSession, docs: DataFrame) -> dict[str, Any]:
    docs = docs.select("doc_id", "text").repartition(8).cache()
    n = docs.count()
    mb = _text_mb(docs)
    p = params(DedupConfig())
    out: dict[str, Any] = {"documents": n, "mb": mb}
    cases = {
        "mixlake (Arrow batch + rensa)": lambda: minhash_signatures(docs, p),
        "text-dedup-style numpy per doc": lambda: docs.select("doc_id", _textdedup_udf()("text").alias("sig")),
        "datasketch per doc": lambda: docs.select("doc_id", _datasketch_udf()("text").alias("sig")),
        "MLlib MinHashLSH (HashingTF)": lambda: _mllib_model(_mllib_features(docs), NUM_PERM).transform(
            _mllib_features(docs)).select("doc_id", "hashes"),
    }
    for name, build in cases.items():
        df = build()
        seconds = _timed_noop(df)
        out[name] = {"seconds": seconds, "mb_per_s": mb / seconds, "docs_per_s": n / seconds}
        print(f"  signatures {name:<34} {mb / seconds:8.1f} MB/s  ({seconds:.1f}s)")
    docs.unpersist()
    return out


def mixlake_end_to_end(spark: SparkSession, docs: DataFrame, cfg: DedupConfig, tag: str) -> dict[str, Any]:
    tmp = f"{WORK}/tmp-{tag}"
    shutil.rmtree(tmp, ignore_errors=True)
    spark.sparkContext.setCheckpointDir(f"{tmp}/checkpoints")

    phases: dict[str, float] = {}
    last = [time.perf_counter()]

    def persist(df: DataFrame, name: str) -> DataFrame:
        # each persisted intermediate closes a phase: signatures, candidate rounds, components
        df.write.mode("overwrite").parquet(f"{tmp}/{name}")
        now = time.perf_counter()
        phases[name] = round(now - last[0], 2)
        last[0] = now
        return spark.read.parquet(f"{tmp}/{name}")

    t = time.perf_counter()
    last[0] = t
    res = deduplicate(docs, cfg, {}, persist=persist)
    res.duplicates.write.mode("overwrite").parquet(f"{tmp}/duplicates")
    now = time.perf_counter()
    phases["keep rule + duplicates write"] = round(now - last[0], 2)
    res.deduped.write.format("noop").mode("overwrite").save()
    phases["deduped (noop write)"] = round(time.perf_counter() - now, 2)
    seconds = time.perf_counter() - t
    print("    phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
    dups = spark.read.parquet(f"{tmp}/duplicates")
    removed = dups.filter(~F.col("is_representative")).count()
    return {"seconds": seconds, "removed": removed, "duplicates": dups, "phases": phases,
            "components_rounds": res.components_rounds}


def _clusters_frame(spark: SparkSession, pairs: list[tuple[str, str]]) -> Any:
    """MLlib's matched pairs → the duplicates-table columns score_clusters reads (union-find: bench-side only)."""
    comp = union_find(pairs)
    size: dict[str, int] = {}
    for c in comp.values():
        size[c] = size.get(c, 0) + 1
    return spark.createDataFrame([(d, c, d == c, size[c]) for d, c in comp.items()],
                                 "doc_id string, cluster_id string, is_representative boolean, cluster_size int")


def f1_on_sample(spark: SparkSession, timeout: float) -> dict[str, Any]:
    docs, cfg = corpus(spark, DOCS_AT_SCALE_1)
    gold = load_gold(os.path.join(cfg.sample.dir, "ground_truth.json"))
    ids = docs.select("doc_id", "source", "source_id", "text")
    mix = mixlake_end_to_end(spark, docs, DedupConfig(), "f1")
    p = params(DedupConfig())
    out = {"mixlake": score_clusters(spark, gold, mix["duplicates"], ids, 0.8, p)}
    _, pairs, _ = mllib_pairs(spark, docs, 0.8, 5, timeout)
    if pairs is not None:
        out["mllib"] = score_clusters(spark, gold, _clusters_frame(spark, pairs), ids, 0.8, p)
    for k, v in out.items():
        print(f"  F1 on sample ({k}): recall@0.8={v['recall_at_threshold']:.3f} precision={v['precision']:.3f} "
              f"F1={v['f1']:.3f}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--mllib-timeout", type=float, default=1800.0)
    ap.add_argument("--signature-docs", type=int, default=20_000)
    ap.add_argument("--skip-mllib-at", type=int, default=0, help="do not run MLlib at sizes >= this (0: never skip)")
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    spark = get_spark(SparkConfig(conf={"spark.sql.shuffle.partitions": "16", "spark.ui.showConsoleProgress": "false",
                                        "spark.databricks.delta.snapshotPartitions": "2"}))
    results: dict[str, Any] = {"machine": f"local[2], {os.cpu_count()} cores", "num_perm": NUM_PERM}
    print("(d) F1 on the sample ground truth")
    results["f1"] = f1_on_sample(spark, args.mllib_timeout)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    print("(a) signature throughput")
    sig_docs, _ = corpus(spark, sizes[0])
    results["signatures"] = signature_throughput(spark, sig_docs.limit(args.signature_docs))
    base = results["signatures"]["text-dedup-style numpy per doc"]["mb_per_s"]
    results["signatures"]["ratio_mixlake_vs_numpy_udf"] = \
        results["signatures"]["mixlake (Arrow batch + rensa)"]["mb_per_s"] / base
    print("(b) end-to-end near-dedup")
    e2e: dict[str, Any] = {}
    for n in sizes:
        docs, _ = corpus(spark, n)
        n_docs = docs.count()
        mix = mixlake_end_to_end(spark, docs, DedupConfig(), f"e2e-{n}")
        row: dict[str, Any] = {"documents": n_docs, "mb": _text_mb(docs), "mixlake_seconds": mix["seconds"],
                               "mixlake_removed": mix["removed"], "mixlake_phases": mix["phases"],
                               "components_rounds": mix["components_rounds"]}
        print(f"  {n_docs:,} docs: mixlake {mix['seconds']:.0f}s")
        if args.skip_mllib_at and n >= args.skip_mllib_at:
            row["mllib_seconds"] = None
            row["mllib_note"] = f"not run at this size (--skip-mllib-at {args.skip_mllib_at})"
        else:
            sec, _, n_pairs = mllib_pairs(spark, docs, 0.8, 5, args.mllib_timeout)
            row["mllib_seconds"] = sec
            row["mllib_pairs"] = n_pairs
            if sec is None:
                row["mllib_note"] = f"did not finish within {args.mllib_timeout:.0f}s"
            else:
                row["ratio_mllib_over_mixlake"] = sec / mix["seconds"]
                print(f"  {n_docs:,} docs: MLlib approxSimilarityJoin {sec:.0f}s ({sec / mix['seconds']:.1f}x)")
        e2e[str(n)] = row
    results["end_to_end"] = e2e
    if len(sizes) >= 2:
        results["scaling_ratio"] = e2e[str(sizes[-1])]["mixlake_seconds"] / e2e[str(sizes[0])]["mixlake_seconds"]
    _print_table(results)
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "dedup.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    spark.stop()
    return 0


def _print_table(r: dict[str, Any]) -> None:
    s = r["signatures"]
    print("\n== dedup benchmark ==")
    print(f"{'signatures (same DataFrame)':<40} {'MB/s':>8} {'vs numpy UDF':>13}")
    base = s["text-dedup-style numpy per doc"]["mb_per_s"]
    for k, v in s.items():
        if isinstance(v, dict):
            print(f"{k:<40} {v['mb_per_s']:8.1f} {v['mb_per_s'] / base:12.1f}x")
    print(f"\n{'end-to-end':<12} {'docs':>10} {'mixlake s':>10} {'MLlib s':>10} {'ratio':>7}")
    for row in r["end_to_end"].values():
        ml = row.get("mllib_seconds")
        ratio = f"{row['ratio_mllib_over_mixlake']:.1f}x" if ml else "-"
        print(f"{'':<12} {row['documents']:>10,} {row['mixlake_seconds']:>10.0f} "
              f"{(f'{ml:.0f}' if ml else row.get('mllib_note', '-')):>10} {ratio:>7}")
    if "scaling_ratio" in r:
        print(f"scaling time(largest)/time(smallest): {r['scaling_ratio']:.1f}")
    for k, v in r["f1"].items():
        print(f"F1 on sample ground truth, {k}: {v['f1']:.3f} (P {v['precision']:.3f}, R@0.8 "
              f"{v['recall_at_threshold']:.3f})")


if __name__ == "__main__":
    raise SystemExit(main())
