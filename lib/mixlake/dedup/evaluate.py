"""Scoring dedup against labelled duplicates, distributed: of the corpus, nothing but a handful of counts reaches the
driver (the gold file, which the driver reads whole, has its components at the threshold computed there).

Gold format (the sample's ``ground_truth.json`` carries the same ``pairs`` key), keyed by ``(source, source_id)``
— the input records' own ids, which are unique within a source but not across sources::

    {"pairs": [[["web", "id-a"], ["wiki", "id-b"], 0.92], ...]}
    {"source": "web", "pairs": [["id-a", "id-b", 0.92], ...]}      # bare ids: all in one source

The third element is the pair's Jaccard similarity of word 5-grams (or another similarity in [0, 1] you trust).

Reported, for a threshold ``t`` (default ``dedup.threshold``):

* **recall**: gold pairs with ``J >= t`` whose two documents share a predicted cluster, and the same per Jaccard
  bucket (the bucket edges include ``t``, so ``0.50–t`` is its own bucket: found pairs there are reported, not
  counted as recall);
* **precision**: predicted same-cluster pairs that are correct — in the same *gold component* (gold pairs with
  ``J >= t``, closed transitively), or unlisted in the gold file but measured (exact word 5-gram Jaccard) at ``>= t``.
  A predicted pair whose Jaccard (gold, else measured) lies in ``[0.5, t)`` is counted in ``borderline_pairs``, one
  below 0.5 in ``false_merges_below_0.5``; neither is correct. Clusters larger than ``max_cluster_size`` are scored
  by their members' pairs with the representative (n-1 pairs, not n²), and said so.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mixlake.dedup.dedup import exact_similarity
from mixlake.dedup.minhash import MinHashParams

GoldPair = tuple[str, str, str, str, float]  # source_a, source_id_a, source_b, source_id_b, jaccard


def _key(x: Any, default_source: str | None, path: str) -> tuple[str, str]:
    if isinstance(x, list) and len(x) == 2:
        return str(x[0]), str(x[1])
    if isinstance(x, str) and default_source is not None:
        return default_source, x
    raise ValueError(f"{path}: a pair member must be [source, source_id] (or a bare id with a top-level "
                     f"\"source\"), got {x!r}")


def load_gold(path: str, text: str | None = None) -> list[GoldPair]:
    """Gold pairs from a file (or its ``text``), see the module docstring."""
    if text is None:
        with open(path) as f:
            text = f.read()
    data = json.loads(text)
    if not isinstance(data, dict) or "pairs" not in data:
        raise ValueError(f"{path}: expected {{\"pairs\": [[[source, id], [source, id], jaccard], ...]}}")
    default = data.get("source")
    out: list[GoldPair] = []
    for row in data["pairs"]:
        if not isinstance(row, list) or len(row) < 3:
            raise ValueError(f"{path}: each pair must be [member_a, member_b, jaccard], got {row!r}")
        (sa, ia), (sb, ib) = _key(row[0], default, path), _key(row[1], default, path)
        out.append((sa, ia, sb, ib, float(row[2])))
    return out


def bucket_edges(threshold: float) -> list[float]:
    return sorted({0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.01, threshold})


def _bucket(j: Any, edges: list[float]) -> Any:
    expr = F.lit(None).cast("string")
    for lo, hi in reversed(list(itertools.pairwise(edges))):
        expr = F.when((j >= lo) & (j < hi), F.lit(f"{lo:.2f}-{min(hi, 1.0):.2f}")).otherwise(expr)
    return expr


def score_clusters(spark: SparkSession, gold: list[GoldPair], duplicates: DataFrame, docs: DataFrame,
                   threshold: float, p: MinHashParams, max_cluster_size: int = 200) -> dict[str, Any]:
    """Metrics of ``duplicates(doc_id, cluster_id, is_representative)`` against ``gold``, computed by Spark.

    ``docs(doc_id, source, source_id, text)`` resolves gold keys to documents and gives the texts of predicted pairs
    the gold file does not list (their Jaccard is measured)."""
    ids = docs.select("doc_id", "source", "source_id")
    g = spark.createDataFrame(gold, "sa string, ia string, sb string, ib string, j double")
    a = ids.select(F.col("source").alias("sa"), F.col("source_id").alias("ia"), F.col("doc_id").alias("da"))
    b = ids.select(F.col("source").alias("sb"), F.col("source_id").alias("ib"), F.col("doc_id").alias("db"))
    g = g.join(a, ["sa", "ia"], "left").join(b, ["sb", "ib"], "left")
    unmatched = g.filter(F.col("da").isNull() | F.col("db").isNull()).count()
    g = g.filter(F.col("da").isNotNull() & F.col("db").isNotNull() & (F.col("da") != F.col("db")))
    g = g.select(F.least("da", "db").alias("a"), F.greatest("da", "db").alias("b"), "j") \
        .groupBy("a", "b").agg(F.max("j").alias("j")).cache()
    cl = duplicates.select("doc_id", "cluster_id")
    same = (g.join(cl.select(F.col("doc_id").alias("a"), F.col("cluster_id").alias("ca")), "a", "left")
            .join(cl.select(F.col("doc_id").alias("b"), F.col("cluster_id").alias("cb")), "b", "left")
            .withColumn("same", F.coalesce(F.col("ca") == F.col("cb"), F.lit(False)).cast("int")))
    edges = bucket_edges(threshold)
    # per Jaccard bucket and side of the threshold, in one aggregation (the threshold is a bucket edge)
    rows = (same.groupBy(_bucket(F.col("j"), edges).alias("bucket"), (F.col("j") >= threshold).alias("at"))
            .agg(F.sum("same").alias("found"), F.count(F.lit(1)).alias("n")).collect())
    by_bucket: dict[str, dict[str, Any]] = {}
    for r in rows:
        b = by_bucket.setdefault(r.bucket, {"found": 0, "pairs": 0})
        b["found"] += int(r.found)
        b["pairs"] += int(r.n)
    for b in by_bucket.values():
        b["recall"] = b["found"] / b["pairs"]
    n_at = sum(int(r.n) for r in rows if r.at)
    hit_at = sum(int(r.found) for r in rows if r.at)

    # gold components at the threshold: what a perfect transitive dedup at t would cluster. The gold file is labelled
    # data the driver has already read whole (load_gold), not the corpus: its resolved pairs come back to the driver
    # and are joined by union-find there — a distributed connected components over a few thousand edges was several
    # rounds of Spark jobs for nothing
    at_pairs = [(r.a, r.b) for r in g.filter(F.col("j") >= threshold).select("a", "b").collect()]
    gold_comp = spark.createDataFrame(sorted(union_find(at_pairs).items()), "node string, component string")
    # predicted pairs: all pairs in clusters up to max_cluster_size, member-representative pairs in larger ones
    sized = duplicates.select("doc_id", "cluster_id", "is_representative", "cluster_size")
    small = sized.filter(F.col("cluster_size") <= max_cluster_size)
    pairs_small = (small.alias("x").join(small.alias("y"), "cluster_id").filter(F.col("x.doc_id") < F.col("y.doc_id"))
                   .select(F.col("x.doc_id").alias("a"), F.col("y.doc_id").alias("b")))
    big = sized.filter(F.col("cluster_size") > max_cluster_size)
    reps = big.filter("is_representative").select("cluster_id", F.col("doc_id").alias("rep"))
    pairs_big = (big.filter(~F.col("is_representative")).join(reps, "cluster_id")
                 .select(F.least("doc_id", "rep").alias("a"), F.greatest("doc_id", "rep").alias("b")))
    pred = pairs_small.unionByName(pairs_big)
    gc = gold_comp.select(F.col("node"), F.col("component"))
    pred = (pred.join(gc.select(F.col("node").alias("a"), F.col("component").alias("ga")), "a", "left")
            .join(gc.select(F.col("node").alias("b"), F.col("component").alias("gb")), "b", "left")
            .join(g, ["a", "b"], "left")
            .withColumn("in_gold_component", F.coalesce(F.col("ga") == F.col("gb"), F.lit(False))))
    unlisted = pred.filter(~F.col("in_gold_component") & F.col("j").isNull()).select(
        F.col("a").alias("src"), F.col("b").alias("dst"))
    measured = exact_similarity(unlisted, docs.select("doc_id", "text"), p).select(
        F.col("src").alias("a"), F.col("dst").alias("b"), F.col("jaccard").alias("m"))
    judged = (pred.join(measured, ["a", "b"], "left")
              .withColumn("sim", F.coalesce("j", "m"))
              .withColumn("verdict", F.when(F.col("in_gold_component"), "correct")
                          .when(F.col("sim") >= threshold, "correct_unlisted")
                          .when(F.col("sim") >= 0.5, "borderline")
                          .when(F.col("sim").isNotNull(), "false_merge").otherwise("unmeasured")))
    verdicts = {r.verdict: int(r.n) for r in judged.groupBy("verdict").agg(F.count(F.lit(1)).alias("n")).collect()}
    sizes = duplicates.filter("is_representative").agg(
        F.sum(F.col("cluster_size") * (F.col("cluster_size") - 1) / 2).alias("pairs"),
        F.sum(F.when(F.col("cluster_size") > max_cluster_size, 1).otherwise(0)).alias("big")).first()
    g.unpersist()
    n_pred = sum(verdicts.values())
    correct = verdicts.get("correct", 0) + verdicts.get("correct_unlisted", 0)
    recall = hit_at / n_at if n_at else None
    precision = correct / n_pred if n_pred else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else None
    return {
        "threshold": threshold, "gold_pairs": len(gold), "gold_pairs_unmatched": int(unmatched),
        "gold_pairs_at_threshold": n_at, "recall_at_threshold": recall, "precision": precision, "f1": f1,
        "predicted_pairs": int(sizes.pairs or 0), "scored_pairs": n_pred,
        "clusters_scored_by_representative": int(sizes.big or 0),
        "correct_pairs": verdicts.get("correct", 0), "correct_unlisted_pairs": verdicts.get("correct_unlisted", 0),
        "borderline_pairs": verdicts.get("borderline", 0),
        "false_merges_below_0.5": verdicts.get("false_merge", 0), "unmeasured_pairs": verdicts.get("unmeasured", 0),
        "recall_by_jaccard": dict(sorted(by_bucket.items())),
    }


def union_find(edges: Iterable[tuple[str, str]], nodes: Iterable[str] = ()) -> dict[str, str]:
    """Single-process connected components: node → the smallest id of its component, for every node on an edge
    (and every node in ``nodes``). The reference the distributed algorithms are tested and benchmarked against."""
    parent: dict[str, str] = {n: n for n in nodes}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in list(parent)}


def score_oracle(gold: list[tuple[str, str, float]], cluster_of: dict[str, str], threshold: float,
                 measured: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    """Single-process reference of :func:`score_clusters` (no large-cluster shortcut) on resolved document keys:
    ``gold`` ``(a, b, jaccard)``, ``cluster_of`` key → predicted cluster, ``measured`` Jaccard of unlisted pairs."""
    gold_j: dict[tuple[str, str], float] = {}
    for a, b, j in gold:
        k = (min(a, b), max(a, b))
        gold_j[k] = max(j, gold_j.get(k, -1.0))
    at = [k for k, j in gold_j.items() if j >= threshold]
    n_at = len(at)
    hit = sum(int(a in cluster_of and cluster_of.get(a) == cluster_of.get(b)) for a, b in at)
    component = union_find(at)
    members: dict[str, list[str]] = defaultdict(list)
    for k, c in cluster_of.items():
        members[c].append(k)
    verdicts: dict[str, int] = defaultdict(int)
    for ids in members.values():
        for a, b in itertools.combinations(sorted(ids), 2):
            if a in component and component.get(a) == component.get(b):
                verdicts["correct"] += 1
                continue
            sim = gold_j.get((a, b), (measured or {}).get((a, b)))
            verdicts["unmeasured" if sim is None else "correct_unlisted" if sim >= threshold
                     else "borderline" if sim >= 0.5 else "false_merge"] += 1
    return {"gold_pairs_at_threshold": n_at, "recall_at_threshold": hit / n_at if n_at else None,
            "correct_pairs": verdicts["correct"], "correct_unlisted_pairs": verdicts["correct_unlisted"],
            "borderline_pairs": verdicts["borderline"], "false_merges_below_0.5": verdicts["false_merge"],
            "unmeasured_pairs": verdicts["unmeasured"]}
