"""Learned quality: GPT-3's classifier (Brown et al. 2020, appendix A) as a Spark ML pipeline.

GPT-3 trained a logistic regression with Spark's standard tokenizer and ``HashingTF`` features; positives were curated
corpora (WebText, Wikipedia, books), negatives unfiltered Common Crawl; a document was kept when
``np.random.pareto(alpha=9) > 1 - score``: mostly high scores, some low ones for diversity. Here:

* **training** — ``RegexTokenizer`` (lowercase, runs of letters/digits, as dedup's normalisation splits words) →
  ``HashingTF`` (``num_features`` = 2^20) → optional ``IDF`` → ``LogisticRegression``; positives are the documents
  of ``positive_sources``, negatives a seeded sample of ``negative_sources``, balanced to the smaller class and
  capped at ``max_train_docs`` (so the driver never holds a corpus: Spark trains on the executors); a seeded
  ``holdout`` fraction (by ``doc_id`` hash, not row order) measures AUC and precision/recall at the operating point;
* **persistence** — MLlib's own format under ``${lake}/models/quality/<fingerprint>/`` (``model/``,
  ``config.json``, ``metrics.json``); the fingerprint covers the config and the input table's version, so an unchanged
  rerun loads instead of training; ``quality_model.path=`` loads a model trained elsewhere;
* **scoring** — ``quality_model_score`` = P(positive) for every document of the sources it applies to, rounded to
  ``SCORE_DECIMALS`` decimals: Spark sums the gradients of the partitions in the order their tasks finish
  (``treeAggregate`` → ``fold``), so two trainings on the same data can differ in the last bits of a weight; rounded,
  the stored scores (and every selection made from them) are the same on a rerun and on another cluster;
* **selection** — ``pareto``: keep when ``pareto_draw(doc_id) > 1 - score``, the draw the Lomax variate numpy's
  ``pareto(alpha)`` returns, ``(1 - u)^(-1/alpha) - 1``, with ``u`` from xxhash64 of ``seed`` and ``doc_id`` (so a
  rerun, or another cluster, keeps the same documents); ``threshold``: score >= ``threshold``; ``top_fraction``:
  per source, score >= that source's (1 - fraction) quantile (``percentile_approx``, no hot-key window); ``none``:
  score only. A dropped document carries the reason ``quality_model``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from typing import Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import IDF, HashingTF, RegexTokenizer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.errors import ConfigError
from mixlake.quality.model_config import QualityModelConfig

log = logging.getLogger(__name__)
# letters and digits: the words of dedup's normalisation (before NFKC/digit folding). (?U): Java's \W is ASCII-only
# by default, and RegexTokenizer compiles the pattern without flags — "Straße" would lose its "ß"
TOKEN_PATTERN = r"(?U)[^\W_]+"
SCORE_DECIMALS = 6


def _unit(seed: int, col: str) -> Column:
    """A deterministic uniform in [0, 1) from ``seed`` and a column (xxhash64, 53 bits)."""
    h = F.xxhash64(F.lit(seed), F.col(col))
    return F.shiftrightunsigned(h, 11).cast("double") / F.lit(float(1 << 53))


def training_set(docs: DataFrame, cfg: QualityModelConfig) -> DataFrame:
    """(doc_id, text, label, is_holdout): positives and a seeded sample of negatives, balanced, capped per class."""
    pos = docs.filter(F.col("source").isin(cfg.positive_sources)).withColumn("label", F.lit(1.0))
    neg = docs.filter(F.col("source").isin(cfg.negative_sources)).withColumn("label", F.lit(0.0))
    counts = {r.label: int(r.n) for r in pos.unionByName(neg).groupBy("label").agg(F.count(F.lit(1)).alias("n"))
              .collect()}
    n_pos, n_neg = counts.get(1.0, 0), counts.get(0.0, 0)
    if not n_pos or not n_neg:
        raise ConfigError(f"quality_model: no training documents (positives from {cfg.positive_sources}: {n_pos}, "
                          f"negatives from {cfg.negative_sources}: {n_neg}); check quality_model.*_sources")
    per_class = min(n_pos, n_neg, cfg.max_train_docs)
    # a seeded Bernoulli sample of each class (by doc_id hash: independent of partitioning and row order)
    out = None
    for df, n in ((pos, n_pos), (neg, n_neg)):
        part = df.filter(_unit(cfg.seed, "doc_id") < F.lit(min(1.0, per_class / n)))
        out = part if out is None else out.unionByName(part)
    assert out is not None
    return (out.select("doc_id", "source", "text", "label")
            .withColumn("is_holdout", _unit(cfg.seed + 1, "doc_id") < F.lit(cfg.holdout)))


def pipeline(cfg: QualityModelConfig) -> Pipeline:
    stages: list[Any] = [RegexTokenizer(inputCol="text", outputCol="words", pattern=TOKEN_PATTERN, gaps=False,
                                        toLowercase=True),
                         HashingTF(inputCol="words", outputCol="tf", numFeatures=cfg.num_features)]
    if cfg.idf:
        stages.append(IDF(inputCol="tf", outputCol="features"))
    else:
        stages[-1].setOutputCol("features")
    stages.append(LogisticRegression(featuresCol="features", labelCol="label", regParam=cfg.reg_param,
                                     maxIter=cfg.max_iter, standardization=False))
    return Pipeline(stages=stages)


def score(model: PipelineModel, docs: DataFrame) -> DataFrame:
    """``docs`` plus ``quality_model_score`` = P(positive) (the pipeline's own columns dropped)."""
    scored = model.transform(docs)
    return (scored.withColumn("quality_model_score", F.round(vector_to_array("probability")[1], SCORE_DECIMALS))
            .drop("words", "tf", "features", "rawPrediction", "probability", "prediction"))


def evaluate(model: PipelineModel, holdout: DataFrame, threshold: float) -> dict[str, Any]:
    s = model.transform(holdout)
    auc = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="rawPrediction",
                                        metricName="areaUnderROC").evaluate(s)
    s = s.withColumn("p", vector_to_array("probability")[1])
    c = s.agg(F.sum(((F.col("p") >= threshold) & (F.col("label") == 1)).cast("int")).alias("tp"),
              F.sum(((F.col("p") >= threshold) & (F.col("label") == 0)).cast("int")).alias("fp"),
              F.sum(((F.col("p") < threshold) & (F.col("label") == 1)).cast("int")).alias("fn"),
              F.count(F.lit(1)).alias("n")).first()
    tp, fp, fn = int(c.tp or 0), int(c.fp or 0), int(c.fn or 0)
    return {"auc": auc, "threshold": threshold, "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "holdout_docs": int(c.n)}


def murmur3_x86_32(data: bytes, seed: int = 42) -> int:
    """MurmurHash3 x86 32-bit (Appleby's reference), as a signed int32 — Spark ML's ``HashingTF`` hashes a term's
    UTF-8 bytes with it (``Murmur3_x86_32.hashUnsafeBytes2``, seed 42). Spark SQL's ``hash()`` uses the older
    ``hashUnsafeBytes``, which differs on the tail bytes, so it cannot stand in."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    body = len(data) // 4 * 4
    for i in range(0, body + (4 if len(data) > body else 0), 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        if i < body:  # the tail block is mixed into h without the rotate-multiply-add
            h = ((h << 13) | (h >> 19)) & mask
            h = (h * 5 + 0xE6546B64) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h >= 1 << 31 else h


def hashing_tf_index(term: str, num_features: int) -> int:
    """``HashingTF(numFeatures).indexOf(term)`` without a JVM call: ``nonNegativeMod(murmur3(utf8), numFeatures)``."""
    return murmur3_x86_32(term.encode("utf-8")) % num_features


def top_features(model: PipelineModel, train: DataFrame, k: int = 20, vocab: int = 50_000) -> dict[str, list]:
    """The words with the largest positive and negative weights. HashingTF cannot be inverted, so the
    ``vocab`` most frequent training words are hashed and their buckets' weights read (a bucket shared by several
    frequent words lists them together).

    A word's bucket comes from :func:`hashing_tf_index` (tested equal to ``HashingTF.indexOf``): calling ``indexOf``
    per word through py4j cost ~1 ms each, 48 of the 90 s the quality stage took with the model at 1,151 documents.
    """
    lr = model.stages[-1]
    tf = model.stages[1]
    weights = lr.coefficients.toArray()
    words = (model.stages[0].transform(train).select(F.explode("words").alias("w")).groupBy("w")
             .agg(F.count(F.lit(1)).alias("n")).orderBy(F.desc("n"), "w").limit(vocab).collect())
    n_features = tf.getNumFeatures()
    by_index: dict[int, list[str]] = {}
    for r in words:
        by_index.setdefault(hashing_tf_index(r.w, n_features), []).append(r.w)
    ranked = sorted(by_index, key=lambda i: weights[i])
    fmt = [(" / ".join(by_index[i][:3]), float(weights[i])) for i in ranked]
    return {"positive": fmt[::-1][:k], "negative": fmt[:k]}


def fingerprint(cfg: QualityModelConfig, input_version: int | None) -> str:
    keys = {k: v for k, v in asdict(cfg).items() if k not in ("select", "alpha", "threshold", "top_fraction",
                                                              "apply_to", "path", "enabled")}
    return hashlib.sha256(json.dumps([keys, input_version, TOKEN_PATTERN, SCORE_DECIMALS],
                                     sort_keys=True).encode()).hexdigest()[:16]


def train_or_load(docs: DataFrame, cfg: QualityModelConfig, models_dir: str, input_version: int | None,
                  s3: Any = None) -> tuple[PipelineModel, dict[str, Any], str]:
    """(model, metrics, where): loads ``cfg.path`` or a model saved for the same fingerprint, else trains and
    saves one."""
    if cfg.path:
        if not storage.exists(storage.join(cfg.path, "model"), s3):
            raise ConfigError(f"quality_model.path: no saved model at {cfg.path} (expected {cfg.path}/model)")
        where = cfg.path
    else:
        where = storage.join(models_dir, fingerprint(cfg, input_version))
    model_dir = storage.join(where, "model")
    metrics_file = storage.join(where, "metrics.json")
    if storage.exists(metrics_file, s3):
        log.info("quality_model: loading %s", where)
        return PipelineModel.load(model_dir), json.loads(storage.read_bytes(metrics_file, s3)), where
    data = training_set(docs, cfg).cache()
    try:
        train = data.filter(~F.col("is_holdout"))
        model = pipeline(cfg).fit(train)
        metrics = evaluate(model, data.filter("is_holdout"), cfg.threshold)
        metrics["train_docs"] = {str(r.label): int(r.n) for r in
                                 train.groupBy("label").agg(F.count(F.lit(1)).alias("n")).collect()}
        metrics["top_features"] = top_features(model, train)
    finally:
        data.unpersist()
    model.write().overwrite().save(model_dir)
    storage.write_bytes(storage.join(where, "config.json"), json.dumps(asdict(cfg), indent=1).encode(), s3)
    storage.write_bytes(metrics_file, json.dumps(metrics, indent=1).encode(), s3)  # last: marks the model complete
    log.info("quality_model: trained %s: AUC %.3f", where, metrics["auc"])
    return model, metrics, where


def selected(scored: DataFrame, cfg: QualityModelConfig) -> Column:
    """The keep decision of ``cfg.select`` for rows of ``scored`` (with ``quality_model_score``, ``source``)."""
    s = F.col("quality_model_score")
    if cfg.select == "pareto":
        u = _unit(cfg.seed + 2, "doc_id")
        draw = F.pow(F.lit(1.0) - u, F.lit(-1.0 / cfg.alpha)) - F.lit(1.0)
        return draw > (F.lit(1.0) - s)
    if cfg.select == "threshold":
        return s >= F.lit(cfg.threshold)
    if cfg.select == "top_fraction":
        return s >= F.col("_source_cut")
    return F.lit(True)


def apply_selection(scored: DataFrame, cfg: QualityModelConfig) -> DataFrame:
    """``scored`` plus ``quality_model_keep`` (true for sources the model does not apply to)."""
    targets = cfg.targets()
    if cfg.select == "top_fraction":
        cuts = (scored.filter(F.col("source").isin(targets)).groupBy("source")
                .agg(F.percentile_approx("quality_model_score", 1.0 - cfg.top_fraction, 10_000).alias("_source_cut")))
        scored = scored.join(F.broadcast(cuts), "source", "left")
    keep = F.when(F.col("source").isin(targets) & F.col("quality_model_score").isNotNull(), selected(scored, cfg))
    return scored.withColumn("quality_model_keep", F.coalesce(keep, F.lit(True))).drop("_source_cut")
