"""Semantic deduplication: SemDeDup (Abbas et al. 2023, arXiv:2303.09540) on Spark's CPUs, offline.

Steps (each a function; :func:`semantic_dedup` composes them):

1. embeddings (:mod:`mixlake.semdedup.embed`), L2-normalised; with ``center`` the corpus mean (of the fit sample)
   is subtracted and the result renormalised — static embeddings share one dominant direction (two unrelated pages
   score > 0.95 without it; Mu & Viswanath 2018 "all-but-the-top");
2. :func:`~mixlake.semdedup.cluster.kmeans_clusters` and
   :func:`~mixlake.semdedup.cluster.split_oversized`: MLlib KMeans (cosine) on a seeded sample, bounded clusters;
3. :func:`earlier_neighbours` per cluster (``groupBy(cluster).applyInPandas``): members sorted by mixlake's keep rule
   (source priority, quality score, longest text, smallest ``doc_id`` — the rule dedup uses), cosine matrix in
   blocks of ``block_rows`` columns; as in the paper's reference code (facebookresearch/SemDeDup,
   ``semdedup.py``: ``triu(S, 1).max(0)``) a member is a semantic duplicate when its cosine to *any* earlier-ranked
   member is >= 1 - eps, so whether a document is removed at eps depends on its own best cosine only and one pass
   yields the whole eps sweep. The kept document it is reported against (``kept_doc_id``) is its most similar
   earlier-ranked member that is itself kept at the configured eps (the first-ranked member always is).

Cosines are computed in float64 and stored rounded to ``COSINE_DECIMALS`` decimals; the eps rule compares the
rounded value, so a rerun (or another BLAS) decides the same documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mixlake.dedup.dedup import source_rank
from mixlake.semdedup.cluster import NO_CLUSTER, SplitStats, choose_k, kmeans_clusters, split_oversized
from mixlake.semdedup.config import SemDedupConfig
from mixlake.semdedup.embed import fit_sample, unit_vectors

COSINE_DECIMALS = 6
MEMBER_SCHEMA = ("doc_id string, source string, cluster string, cluster_size long, rank long, nearest_doc_id string, "
                 "cosine double, kept_doc_id string, kept_cosine double, eps_bucket double, removed boolean")


def earlier_neighbours(x: np.ndarray, block_rows: int = 1024,
                       allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each row ``j`` of ``x`` (rows in keep order): the largest cosine ``x[i] . x[j]`` over earlier rows
    ``i < j`` (only rows with ``allowed[i]`` when given) and that ``i``; ``(-inf, -1)`` when there is none. Ties go
    to the earliest ``i``. Memory: ``len(x) * block_rows`` floats."""
    m = len(x)
    best = np.full(m, -np.inf)
    arg = np.full(m, -1, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    for start in range(0, m, block_rows):
        stop = min(m, start + block_rows)
        sims = x[:stop] @ x[start:stop].T  # [earlier rows, block columns]
        rows = np.arange(stop)[:, None]
        cols = np.arange(start, stop)[None, :]
        mask = rows < cols
        if allowed is not None:
            mask &= allowed[:stop, None]
        sims = np.where(mask, np.round(sims, COSINE_DECIMALS), -np.inf)
        idx = np.argmax(sims, axis=0)  # first maximum: the earliest-ranked on ties
        val = sims[idx, np.arange(stop - start)]
        best[start:stop] = val
        arg[start:stop] = np.where(np.isfinite(val), idx, -1)
    return best, arg


def eps_bucket(cosine: np.ndarray, sweep: list[float]) -> np.ndarray:
    """The smallest eps of ``sweep`` at which a document with this best cosine is removed (NaN: at none)."""
    out = np.full(len(cosine), np.nan)
    for eps in sorted(sweep, reverse=True):
        out[cosine >= 1.0 - eps] = eps
    return out


def cluster_members(pdf: pd.DataFrame, eps: float, sweep: list[float], block_rows: int) -> pd.DataFrame:
    """One cluster (columns ``doc_id, source, cluster, _prio, _quality, n_chars, vec``) → its rows of
    :data:`MEMBER_SCHEMA`."""
    pdf = pdf.sort_values(["_prio", "_quality", "n_chars", "doc_id"], ascending=[True, False, False, True],
                          kind="mergesort").reset_index(drop=True)
    m = len(pdf)
    ids = pdf["doc_id"].to_numpy()
    x = np.stack(pdf["vec"].to_numpy()).astype(np.float64)
    best, arg = earlier_neighbours(x, block_rows)  # a single member has no earlier one: (-inf, -1)
    removed = best >= 1.0 - eps
    kept_best, kept_arg = earlier_neighbours(x, block_rows, allowed=~removed) if removed.any() else (best, arg)
    finite = np.isfinite(best)
    kfinite = np.isfinite(kept_best) & removed
    return pd.DataFrame({
        "doc_id": ids, "source": pdf["source"].to_numpy(), "cluster": pdf["cluster"].to_numpy(),
        "cluster_size": np.full(m, m, dtype=np.int64), "rank": np.arange(m, dtype=np.int64),
        "nearest_doc_id": np.where(finite, ids[np.maximum(arg, 0)], None),
        "cosine": np.where(finite, best, np.nan),
        "kept_doc_id": np.where(kfinite, ids[np.maximum(kept_arg, 0)], None),
        "kept_cosine": np.where(kfinite, kept_best, np.nan),
        "eps_bucket": eps_bucket(np.where(finite, best, -np.inf), sweep),
        "removed": removed,
    })


def keep_rank_columns(docs: DataFrame, priorities: dict[str, int]) -> DataFrame:
    """``_prio`` (dedup's :func:`~mixlake.dedup.dedup.source_rank`) and ``_quality`` (quality score, missing last):
    the keep rule's keys as columns, for the per-cluster sort in pandas."""
    quality = F.coalesce(F.col("quality_score").cast("double"), F.lit(-1.0)) if "quality_score" in docs.columns \
        else F.lit(-1.0)
    return docs.withColumn("_prio", source_rank(priorities).cast("int")).withColumn("_quality", quality)


def centered(emb: DataFrame, mean: np.ndarray | None) -> DataFrame:
    """``doc_id, vec``: the embedding minus ``mean``, renormalised (``mean`` None: the embedding itself)."""
    if mean is None:
        return emb.select("doc_id", F.col("embedding").alias("vec"))
    return unit_vectors(emb, "embedding", "vec", mean)


def mean_embedding(sample: DataFrame) -> np.ndarray | None:
    """The mean of the sample's embeddings (None for an empty sample: nothing to centre on)."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.stat import Summarizer

    if not sample.limit(1).count():  # MLlib's Summarizer refuses an empty input
        return None
    row = sample.agg(Summarizer.mean(array_to_vector("embedding")).alias("m")).first()
    return np.round(np.asarray(row.m.toArray(), dtype=np.float64), 7)  # fixed digits: the same mean on a rerun


@dataclass
class SemDedupResult:
    members: DataFrame  # every input document: MEMBER_SCHEMA
    vectors: DataFrame  # doc_id, cluster, vec (the centred, renormalised embedding the cosines are computed on)
    k: int
    split: SplitStats
    center: bool


def semantic_dedup(docs: DataFrame, embeddings: DataFrame, cfg: SemDedupConfig, priorities: dict[str, int],
                   persist: Callable[[DataFrame, str], DataFrame] | None = None) -> SemDedupResult:
    """Clusters and within-cluster duplicates for ``docs`` (``doc_id, source, n_chars``, optional
    ``quality_score``) given their ``embeddings`` (``doc_id, embedding``). ``members`` has one row per document."""
    persist = persist or (lambda df, name: df.localCheckpoint())
    emb = embeddings.join(docs.select("doc_id"), "doc_id")
    mean = mean_embedding(fit_sample(emb, cfg)) if cfg.center else None
    vecs = persist(centered(emb, mean), "vecs")
    n = vecs.count()
    k = choose_k(n, cfg)
    clustered = persist(kmeans_clusters(vecs, fit_sample(vecs, cfg), k, cfg), "clusters")
    clustered, split = split_oversized(clustered, cfg, persist)
    ranked = keep_rank_columns(docs, priorities).select("doc_id", "source", "n_chars", "_prio", "_quality")
    grouped = clustered.join(ranked, "doc_id").select("doc_id", "source", "cluster", "_prio", "_quality",
                                                     "n_chars", "vec")
    sweep, eps, block = cfg.sweep(), cfg.eps, cfg.block_rows

    def per_cluster(pdf: pd.DataFrame) -> pd.DataFrame:
        return cluster_members(pdf, eps, sweep, block)

    # zero vectors (no token) are nobody's duplicate; they skip the grouping, which would make them one hot group
    loners = grouped.filter(F.col("cluster") == NO_CLUSTER).select(
        "doc_id", "source", "cluster", F.lit(None).cast("long").alias("cluster_size"),
        F.lit(None).cast("long").alias("rank"), F.lit(None).cast("string").alias("nearest_doc_id"),
        F.lit(None).cast("double").alias("cosine"), F.lit(None).cast("string").alias("kept_doc_id"),
        F.lit(None).cast("double").alias("kept_cosine"), F.lit(None).cast("double").alias("eps_bucket"),
        F.lit(False).alias("removed"))
    members = (grouped.filter(F.col("cluster") != NO_CLUSTER).groupBy("cluster")
               .applyInPandas(per_cluster, MEMBER_SCHEMA).unionByName(loners))
    return SemDedupResult(members=members, vectors=clustered.select("doc_id", "cluster", "vec"), k=k, split=split,
                          center=cfg.center)


def sweep_table(members: DataFrame, cfg: SemDedupConfig) -> list[dict[str, Any]]:
    """Documents removed at each eps of the sweep (counted on ``members``: cosine >= 1 - eps)."""
    aggs = [F.sum(F.when(F.col("cosine") >= 1.0 - e, 1).otherwise(0)).alias(f"e{i}") for i, e in
            enumerate(cfg.sweep())]
    row = members.agg(F.count(F.lit(1)).alias("n"), *aggs).first()
    n_docs = int(row.n) if row else 0
    out = []
    for i, e in enumerate(cfg.sweep()):
        removed = int(row[f"e{i}"] or 0) if row else 0
        out.append({"eps": e, "min_cosine": round(1.0 - e, 6), "docs_removed": removed,
                    "pct_removed": round(100.0 * removed / n_docs, 3) if n_docs else 0.0,
                    "configured": e == cfg.eps})
    return out
