"""Clustering for SemDeDup: MLlib ``KMeans`` (cosine) fitted on a seeded sample and applied to all, then clusters
larger than ``max_cluster_size`` split further, so no task of the within-cluster step holds an unbounded cluster.

A split puts each member of an oversized cluster on one side of ``b`` seeded random hyperplanes through the
cluster's mean (``b`` = enough bits for the cluster to fall under the bound if the planes halved it, plus one):
member ``x`` of cluster ``c`` goes to ``c.<bits>``. Rounds repeat up to ``split_rounds``; a cluster still too large
after them (members with nearly the same embedding, which no plane separates) is cut into parts by a hash of
``doc_id`` — near-duplicates across parts are then missed, and the number of such cuts is reported.
Cluster names are strings (``"17"``, ``"17.5"``, ``"17.5#2"``) so a user sees where each came from.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mixlake.semdedup.config import SemDedupConfig
from mixlake.semdedup.embed import vector_matrix

NO_CLUSTER = "-"  # documents whose embedding is the zero vector: never anyone's duplicate


def choose_k(n_docs: int, cfg: SemDedupConfig) -> int:
    """``semdedup.k``, else ``ceil(n / docs_per_cluster)``; never more than the fit sample."""
    k = cfg.k if cfg.k is not None else math.ceil(n_docs / cfg.docs_per_cluster)
    return max(1, min(k, cfg.fit_sample, max(n_docs, 1)))


def kmeans_clusters(vecs: DataFrame, sample: DataFrame, k: int, cfg: SemDedupConfig) -> DataFrame:
    """``vecs`` (``doc_id``, ``vec`` unit ``array<float>``) plus ``cluster``: MLlib KMeans with cosine distance,
    fitted on ``sample`` (one partition, fixed order: the same centres on a rerun). Zero vectors get
    :data:`NO_CLUSTER`."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.functions import array_to_vector

    nonzero = F.aggregate("vec", F.lit(0.0).cast("double"), lambda acc, x: acc + F.abs(x)) > 0
    train = sample.filter(nonzero).select(array_to_vector("vec").alias("features"))
    if k <= 1 or not train.limit(1).count():  # one cluster, or nothing to fit (every sampled vector is zero)
        return vecs.withColumn("cluster", F.when(nonzero, F.lit("0")).otherwise(F.lit(NO_CLUSTER)))
    model = KMeans(k=k, seed=cfg.seed, maxIter=cfg.kmeans_max_iter, distanceMeasure="cosine",
                   featuresCol="features", predictionCol="prediction").fit(train)
    live = vecs.filter(nonzero).withColumn("features", array_to_vector("vec"))
    assigned = (model.transform(live).withColumn("cluster", F.col("prediction").cast("string"))
                .drop("features", "prediction"))
    return assigned.unionByName(vecs.filter(~nonzero).withColumn("cluster", F.lit(NO_CLUSTER)))


@dataclass
class SplitStats:
    rounds: int = 0
    clusters_split: int = 0
    clusters_cut: int = 0  # still oversized after split_rounds: cut by doc_id hash
    largest_before: int = 0
    largest_after: int = 0
    sizes: list[int] = field(default_factory=list)


def hyperplanes(cluster: str, round_no: int, bits: int, dim: int, seed: int) -> np.ndarray:
    """The seeded random directions that split ``cluster`` in round ``round_no``: [bits, dim]."""
    rng = np.random.default_rng([seed, round_no, zlib.crc32(cluster.encode())])
    return rng.standard_normal((bits, dim))


def _split_batches(plan: dict[str, tuple[np.ndarray, np.ndarray]]) -> Callable[..., Any]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            clusters = b.column("cluster").to_pylist()
            out = list(clusters)
            todo = sorted({c for c in clusters if c in plan})
            if todo:
                x = vector_matrix(b.column("vec"), b.num_rows)
                names = np.asarray(clusters, dtype=object)
                for c in todo:  # vectorised per cluster present in the batch
                    rows = np.flatnonzero(names == c)
                    mean, planes = plan[c]
                    sides = ((x[rows] - mean) @ planes.T) > 0  # [rows, bits]
                    codes = sides.astype(np.int64) @ (1 << np.arange(planes.shape[0], dtype=np.int64))
                    for r, code in zip(rows, codes, strict=True):
                        out[r] = f"{c}.{int(code)}"
            cols = {n: b.column(n) for n in b.schema.names}
            cols["cluster"] = pa.array(out, type=pa.string())
            yield pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))
    return run


def split_oversized(clustered: DataFrame, cfg: SemDedupConfig,
                    persist: Callable[[DataFrame, str], DataFrame]) -> tuple[DataFrame, SplitStats]:
    """Split clusters above ``max_cluster_size`` (see the module docstring). Only the oversized clusters' sizes and
    means reach the driver (at most ``documents / max_cluster_size`` of them)."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.stat import Summarizer

    stats = SplitStats()
    bound = cfg.max_cluster_size
    df = clustered
    for round_no in range(cfg.split_rounds + 1):
        sizes = {r.cluster: int(r["count"]) for r in
                 df.filter(F.col("cluster") != NO_CLUSTER).groupBy("cluster").count()
                 .filter(F.col("count") > bound).collect()}
        if round_no == 0:
            stats.largest_before = max(sizes.values(), default=0)
        if not sizes:
            break
        if round_no == cfg.split_rounds:  # last resort: cut by hash of doc_id
            stats.clusters_cut = len(sizes)
            parts = F.create_map(*[x for c, n in sorted(sizes.items()) for x in (F.lit(c), F.lit(-(-n // bound)))])
            n_parts = parts[F.col("cluster")]
            df = df.withColumn("cluster", F.when(n_parts.isNotNull(), F.concat(
                F.col("cluster"), F.lit("#"),
                F.pmod(F.xxhash64(F.lit(cfg.seed), F.col("doc_id")), n_parts).cast("string")))
                .otherwise(F.col("cluster")))
            break
        means = {r.cluster: np.asarray(r.mean.toArray(), dtype=np.float64) for r in
                 df.filter(F.col("cluster").isin(sorted(sizes)))
                 .groupBy("cluster").agg(Summarizer.mean(array_to_vector("vec")).alias("mean")).collect()}
        plan = {}
        for c, n in sizes.items():
            bits = min(12, math.ceil(math.log2(n / bound)) + 1)
            plan[c] = (means[c], hyperplanes(c, round_no, bits, len(means[c]), cfg.seed))
        stats.rounds = round_no + 1
        stats.clusters_split += len(sizes)
        df = persist(df.mapInArrow(_split_batches(plan), df.schema), f"split_{round_no}")
    return df, stats
