"""Exact + MinHash-LSH near-duplicate removal: DataFrame → DataFrame transforms.

Pipeline (each step a function here, composed by :func:`deduplicate`):

1. :func:`minhash_signatures` — one vectorised pass over the text: exact key, shingle count, MinHash signature, LSH
   band keys (:mod:`mixlake.dedup.minhash`).
2. :func:`exact_edges` — documents with equal normalised text are linked to their group's smallest ``doc_id``.
3. :func:`lsh_buckets` — on the exact survivors with at least ``min_shingles`` shingles: the members of every
   (band, band-hash) bucket with two or more documents.
4. :func:`verified_candidates` — candidate pairs scored by estimated (signature) or exact (shingle-set) Jaccard and
   kept when it reaches ``threshold`` (Lee et al. 2021 verify NearDup candidates; NeMo Curator reports 1–2% false
   positives without). Small buckets: all pairs. Hot buckets (thousands of boilerplate pages): a star to the bucket
   minimum, and the members it rejects re-starred around their own minimum for a bounded number of rounds — never
   n² pairs, yet members similar to each other but not to the minimum are still compared.
5. :func:`~mixlake.dedup.components.connected_components` over exact + verified edges.
6. :func:`choose_representatives` — one document kept per cluster, by source priority, then quality score (when the
   input has ``quality_score``), then longest text, then smallest ``doc_id``.

References: Broder 1997 (MinHash); Leskovec et al., MMDS ch. 3 (banding); datatrove ``minhash.py`` (signature
and bucket stages); text-dedup ``minhash_spark.py`` (Spark layout).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mixlake.dedup.components import connected_components
from mixlake.dedup.config import DedupConfig
from mixlake.dedup.minhash import SIGNATURE_DDL, MinHashParams, shingle_hashes, signature_udf, word_hashes


def params(cfg: DedupConfig) -> MinHashParams:
    b, r = cfg.band_rows()
    return MinHashParams(ngram=cfg.ngram, bands=b, rows=r, seed=cfg.seed, normalize=cfg.normalize)


def minhash_signatures(docs: DataFrame, p: MinHashParams, carry: Sequence[str] = ()) -> DataFrame:
    """``(doc_id, text, ...)`` → ``(doc_id, exact_key, n_words, n_shingles, signature, bands, *carry)``: the
    ``carry`` columns of ``docs`` pass through the same pass unchanged."""
    ddl = SIGNATURE_DDL + "".join(f", `{c}` {docs.schema[c].dataType.simpleString()}" for c in carry)
    return docs.select("doc_id", "text", *carry).mapInArrow(signature_udf(p, carry), ddl)


def _scope(df: DataFrame, scope: str) -> DataFrame:
    return df.withColumn("scope", F.col("source") if scope == "source" else F.lit(""))


def exact_edges(sigs: DataFrame) -> DataFrame:
    """``(src, dst)``: every document with an exact twin → the smallest ``doc_id`` of its (scope, exact_key) group."""
    sigs = sigs.filter(F.col("n_words") > 0)  # nothing left after normalisation (symbol soup): not comparable
    roots = (sigs.groupBy("scope", "exact_key")
             .agg(F.min("doc_id").alias("root"), F.count(F.lit(1)).alias("n"))
             .filter(F.col("n") > 1).drop("n"))
    return (sigs.join(roots, ["scope", "exact_key"]).filter(F.col("doc_id") != F.col("root"))
            .select(F.col("doc_id").alias("src"), F.col("root").alias("dst")))


BUCKET = ["bucket"]


def lsh_buckets(sigs: DataFrame, persist: Callable[[DataFrame, str], DataFrame] | None = None) -> DataFrame:
    """``(bucket, doc_id, root, n)``: the members of every LSH bucket with two or more documents, with the bucket's
    smallest ``doc_id`` (``root``) and size. ``bucket`` is one 64-bit key of (scope, band, band hash).

    Nearly every bucket holds one document (b rows per document, most unique), so the keys of the shared buckets are
    found first with a count alone — an aggregation and no join over the b × documents band rows — and only their
    members are joined and given a root. With ``persist`` those keys are materialised, so the planner sees how few
    they are and joins the band rows with them by broadcast (no shuffle of the band rows for the join). Both steps
    are aggregations, not windows: a hot bucket (boilerplate shared by thousands of pages) is combined map-side.

    Why one key: Spark aggregates 20M band rows keyed by one long in less than half the time it takes keyed by
    (scope string, band int, band hash long) (11.4 vs 25.4 s here). Two distinct buckets share a key with
    probability ~ m² / 2^65 for m band rows — as two distinct band tuples already share a 64-bit band hash; a shared
    key only adds candidate pairs, which verification scores like any other."""
    keep = persist or (lambda df, name: df)
    banded = (sigs.select("scope", "doc_id", F.posexplode("bands").alias("band", "band_hash"))
              .select(F.xxhash64("scope", "band", "band_hash").alias("bucket"), "doc_id"))
    shared = keep(banded.groupBy(*BUCKET).agg(F.count(F.lit(1)).alias("n")).filter(F.col("n") > 1), "lsh_shared")
    members = banded.join(shared, BUCKET)
    roots = members.groupBy(*BUCKET).agg(F.min("doc_id").alias("root"))
    return members.join(roots, BUCKET)


def lsh_candidates(sigs: DataFrame) -> DataFrame:
    """``(src, dst)`` star edges: per bucket, members → bucket minimum (the first verification round of large
    buckets; kept as a function for the benchmark's comparison with the old scheme)."""
    return (lsh_buckets(sigs).filter(F.col("doc_id") != F.col("root"))
            .select(F.col("doc_id").alias("src"), F.col("root").alias("dst")).distinct())


Scorer = Callable[[DataFrame], DataFrame]  # (src, dst) -> (src, dst, jaccard)


def verified_candidates(members: DataFrame, score: Scorer | None, threshold: float, all_pairs_max: int,
                        reroot_rounds: int, persist: Callable[[DataFrame, str], DataFrame]) -> DataFrame:
    """Candidate pairs of the LSH buckets with their Jaccard and verdict: ``(src, dst, jaccard, verified, scheme)``,
    ``src > dst``, one row per pair.

    * A bucket of at most ``all_pairs_max`` members: every pair in it is a candidate — the textbook LSH candidate
      set (Leskovec et al., MMDS §3.4), so verification cannot miss two similar members.
    * A larger (hot) bucket: a star of its members to its minimum, verified; the members the minimum rejected are
      re-starred around *their* minimum and verified again, up to ``reroot_rounds`` times. Template families whose
      members are similar to each other but not to the bucket minimum are found this way, at a cost bounded by
      ``(reroot_rounds + 1) × members`` pairs per bucket (never n²).

    ``score=None`` (``dedup.verify=none``) accepts every candidate unscored (no re-rooting: nothing is rejected).
    """
    small = members.filter(F.col("n") <= all_pairs_max).select(*BUCKET, "doc_id")
    all_pairs = (small.alias("a").join(small.alias("b"), BUCKET)
                 .filter(F.col("a.doc_id") > F.col("b.doc_id"))
                 .select(F.col("a.doc_id").alias("src"), F.col("b.doc_id").alias("dst"))
                 .distinct().withColumn("scheme", F.lit("all_pairs")))
    star = (members.filter((F.col("n") > all_pairs_max) & (F.col("doc_id") != F.col("root")))
            .select(*BUCKET, "doc_id", "root"))
    if score is None:
        unscored = all_pairs.unionByName(star.select(F.col("doc_id").alias("src"), F.col("root").alias("dst"),
                                                     F.lit("star").alias("scheme")))
        return (unscored.groupBy("src", "dst").agg(F.min("scheme").alias("scheme"))
                .withColumn("jaccard", F.lit(None).cast("double")).withColumn("verified", F.lit(True)))
    has_hot_buckets = members.filter(F.col("n") > all_pairs_max).limit(1).count() > 0
    all_pairs_scored = _verdict(score(all_pairs.select("src", "dst")), threshold).withColumn("scheme",
                                                                                            F.lit("all_pairs"))
    if not has_hot_buckets:  # the usual case: the all-pairs verdicts are the candidates (already one row per pair)
        return all_pairs_scored.select("src", "dst", "jaccard", "verified", "scheme")
    scored = [persist(all_pairs_scored, "candidates_all_pairs")]
    pending = persist(star, "star_0")
    for r in range(reroot_rounds + 1):
        if r > 0 and pending.limit(1).count() == 0:
            break
        pairs = pending.select(F.col("doc_id").alias("src"), F.col("root").alias("dst")).distinct()
        verdicts = persist(_verdict(score(pairs), threshold).withColumn("scheme", F.lit(
            "star" if r == 0 else "reroot")), f"candidates_star_{r}")
        scored.append(verdicts)
        if r == reroot_rounds:
            break
        # members rejected by this round's root: re-star them around their own minimum, per bucket
        rejected = (pending.join(verdicts.filter(~F.col("verified"))
                                 .select(F.col("src").alias("doc_id"), F.col("dst").alias("root")),
                                 ["doc_id", "root"], "left_semi").select(*BUCKET, "doc_id"))
        roots = (rejected.groupBy(*BUCKET).agg(F.min("doc_id").alias("root"), F.count(F.lit(1)).alias("n"))
                 .filter(F.col("n") > 1).drop("n"))
        pending = persist(rejected.join(roots, BUCKET).filter(F.col("doc_id") != F.col("root")), f"star_{r + 1}")
    union = scored[0]
    for df in scored[1:]:
        union = union.unionByName(df)
    # the same pair may come from several buckets or rounds: its verdict is the same, keep the first scheme
    return union.groupBy("src", "dst").agg(F.first("jaccard").alias("jaccard"), F.first("verified").alias("verified"),
                                           F.min("scheme").alias("scheme"))


def _verdict(scored: DataFrame, threshold: float) -> DataFrame:
    return scored.withColumn("verified", F.col("jaccard") >= F.lit(threshold))


def _signature_jaccard(batches: Any) -> Any:
    for batch in batches:
        a = batch.column("sig_a").to_numpy(zero_copy_only=False)
        b = batch.column("sig_b").to_numpy(zero_copy_only=False)
        if len(a) == 0:
            continue
        ma = np.frombuffer(b"".join(a), dtype=np.uint32).reshape(len(a), -1)
        mb = np.frombuffer(b"".join(b), dtype=np.uint32).reshape(len(b), -1)
        j = (ma == mb).mean(axis=1)
        yield pa.RecordBatch.from_arrays([batch.column("src"), batch.column("dst"), pa.array(j, pa.float64())],
                                         names=["src", "dst", "jaccard"])


def signature_similarity(pairs: DataFrame, sigs: DataFrame) -> DataFrame:
    """``(src, dst)`` → ``(src, dst, jaccard)`` estimated from the MinHash signatures."""
    s = sigs.select("doc_id", "signature")
    joined = (pairs.join(s.withColumnRenamed("doc_id", "src").withColumnRenamed("signature", "sig_a"), "src")
              .join(s.withColumnRenamed("doc_id", "dst").withColumnRenamed("signature", "sig_b"), "dst"))
    return joined.select("src", "dst", "sig_a", "sig_b").mapInArrow(
        _signature_jaccard, "src string, dst string, jaccard double")


def _shingle_sets_udf(p: MinHashParams) -> Any:
    def run(batches: Any) -> Any:
        for batch in batches:
            wh, offsets = word_hashes(batch.column("text"), p.normalize)
            sh, rows = shingle_hashes(wh, offsets, p.ngram)
            sets = [np.unique(sh[rows[i]:rows[i + 1]]).view(np.int64) for i in range(len(rows) - 1)]
            yield pa.RecordBatch.from_arrays([batch.column("doc_id"), pa.array(sets, pa.list_(pa.int64()))],
                                             names=["doc_id", "shingles"])
    return run


def exact_similarity(pairs: DataFrame, docs: DataFrame, p: MinHashParams,
                     persist: Callable[[DataFrame, str], DataFrame] | None = None) -> DataFrame:
    """``(src, dst)`` → ``(src, dst, jaccard)`` from the exact shingle sets (recomputed for the pairs' documents).

    With ``persist`` the pairs and the shingle sets are materialised first: the planner then knows the pairs are
    small and filters the text with a broadcast semi-join instead of shuffling the whole input's text, and the
    Python shingling runs once though the sets are joined twice."""
    keep = persist or (lambda df, name: df)
    pairs = keep(pairs, "scored_pairs")
    ids = pairs.select(F.col("src").alias("doc_id")).union(pairs.select(F.col("dst").alias("doc_id"))).distinct()
    sets = keep(docs.select("doc_id", "text").join(ids, "doc_id", "left_semi")
                .mapInArrow(_shingle_sets_udf(p), "doc_id string, shingles array<bigint>"), "shingle_sets")
    j = (pairs.join(sets.withColumnRenamed("doc_id", "src").withColumnRenamed("shingles", "a"), "src")
         .join(sets.withColumnRenamed("doc_id", "dst").withColumnRenamed("shingles", "b"), "dst"))
    inter = F.size(F.array_intersect("a", "b"))
    union = F.size(F.array_union("a", "b"))
    return j.select("src", "dst", F.when(union > 0, inter / union).otherwise(F.lit(1.0)).alias("jaccard"))


def scorer(cfg: DedupConfig, sigs: DataFrame, docs: DataFrame, p: MinHashParams,
           persist: Callable[[DataFrame, str], DataFrame] | None = None) -> Scorer | None:
    """How candidate pairs are scored (``dedup.verify``): estimated Jaccard from the signatures, exact shingle-set
    Jaccard (``persist``: see :func:`exact_similarity`), or not at all."""
    if cfg.verify == "none":
        return None
    if cfg.verify == "signature":
        return lambda pairs: signature_similarity(pairs, sigs)
    return lambda pairs: exact_similarity(pairs, docs, p, persist)


def source_rank(priorities: dict[str, int]) -> Column:
    """The keep rule's first key: the source's priority (lower = preferred), sources without one last."""
    if not priorities:
        return F.lit(1 << 30)
    mapping = F.create_map(*[x for k, v in sorted(priorities.items()) for x in (F.lit(k), F.lit(int(v)))])
    return F.coalesce(mapping[F.col("source")], F.lit(1 << 30))


def keep_order(docs: DataFrame, priorities: dict[str, int]) -> list[Any]:
    """Sort keys of the keep rule (first = kept): source priority, quality score, longest text, smallest doc_id."""
    order = [source_rank(priorities).asc()]
    if "quality_score" in docs.columns:
        order.append(F.col("quality_score").desc_nulls_last())
    order += [F.col("n_chars").desc(), F.col("doc_id").asc()]
    return order


def _keep_columns(docs: DataFrame) -> list[str]:
    return ["doc_id", "source", "n_chars"] + (["quality_score"] if "quality_score" in docs.columns else [])


def remove_duplicates(docs: DataFrame, duplicates: DataFrame) -> DataFrame:
    """``docs`` minus the non-representative members of ``duplicates`` (the ``deduped`` table)."""
    removed = duplicates.filter(~F.col("is_representative")).select("doc_id")
    return docs.join(removed, "doc_id", "left_anti")


def choose_representatives(members: DataFrame, docs: DataFrame, priorities: dict[str, int]) -> DataFrame:
    """``members(node, component)`` → ``(doc_id, cluster_id, is_representative, cluster_size)``."""
    m = members.select(F.col("node").alias("doc_id"), F.col("component").alias("cluster_id")) \
        .join(docs.select(*_keep_columns(docs)), "doc_id")
    w = Window.partitionBy("cluster_id").orderBy(*keep_order(docs, priorities))
    return (m.withColumn("_rank", F.row_number().over(w))
            .withColumn("cluster_size", F.count(F.lit(1)).over(Window.partitionBy("cluster_id")))
            .select("doc_id", "cluster_id", (F.col("_rank") == 1).alias("is_representative"), "cluster_size"))


@dataclass
class DedupResult:
    signatures: DataFrame  # doc_id, exact_key, n_words, n_shingles, signature, bands, source, n_chars,
    # [quality_score,] scope
    candidates: DataFrame  # src, dst, jaccard, verified, scheme (all_pairs | star | reroot)
    components_rounds: int  # large-star/small-star rounds to the fixed point
    duplicates: DataFrame  # doc_id, source, cluster_id, kind, is_representative, similarity, cluster_size
    deduped: DataFrame  # input rows minus non-representative duplicates


def deduplicate(docs: DataFrame, cfg: DedupConfig, priorities: dict[str, int],
                persist: Any = None, quality: DataFrame | None = None) -> DedupResult:
    """The whole dedup on ``docs`` (the ``documents`` schema). ``persist(df, name)`` materialises intermediates
    (the stage checkpoints them to disk); default: local checkpoints (executor storage). ``quality(doc_id,
    quality_score)``, when given, is the keep rule's second key (a ``quality_score`` column of ``docs`` also is)."""
    persist = persist or (lambda df, name: df.localCheckpoint())  # cuts lineage: rounds do not nest plans
    p = params(cfg)
    # the keep rule's columns travel with the persisted signatures (carried through the signature pass): neither
    # the input nor the quality table is read again for them, and the text is never joined with the scores
    sigs = minhash_signatures(docs, p, carry=_keep_columns(docs)[1:])
    if quality is not None:
        sigs = sigs.join(quality.select("doc_id", "quality_score"), "doc_id", "left")
    sigs = persist(_scope(sigs, cfg.scope), "signatures")
    # read twice (the LSH input leaves exact copies out; the components take them as edges): computed once
    exact = persist(exact_edges(sigs), "exact_edges")
    exact_dups = exact.select(F.col("src").alias("doc_id"))
    lsh_input = sigs.filter(F.col("n_shingles") >= cfg.min_shingles).join(exact_dups, "doc_id", "left_anti")
    score = scorer(cfg, sigs, docs, p, persist)
    # the bucket members are read by the all-pairs self-join and the star rounds: banded once, persisted
    buckets = persist(lsh_buckets(lsh_input, persist), "lsh_buckets")
    cands = persist(verified_candidates(buckets, score, cfg.threshold,
                                        cfg.bucket_all_pairs_max, cfg.reroot_rounds, persist), "candidates")
    near = cands.filter("verified").select("src", "dst")
    cc = connected_components(exact.unionByName(near), cfg.cc_max_iterations, persist=persist)
    members = persist(cc.members, "components")
    reps = choose_representatives(members, sigs, priorities)
    # kind and similarity relative to the cluster's representative
    rep_sig = (reps.filter("is_representative").join(sigs.select("doc_id", "exact_key", "signature"), "doc_id")
               .select("cluster_id", F.col("exact_key").alias("rep_key"), F.col("signature").alias("rep_sig"),
                       F.col("doc_id").alias("rep_id")))
    with_rep = (reps.join(sigs.select("doc_id", "source", "exact_key", "signature"), "doc_id")
                .join(rep_sig, "cluster_id"))
    # similarity to the representative, measured as verification measures (exact shingle Jaccard by default)
    # (an exact copy of its representative has similarity 1 without scoring)
    rep_pairs = (with_rep.filter(~F.col("is_representative") & (F.col("exact_key") != F.col("rep_key")))
                 .select(F.col("doc_id").alias("src"), F.col("rep_id").alias("dst")))
    sim = (score or (lambda pairs: signature_similarity(pairs, sigs)))(rep_pairs)
    duplicates = (with_rep.join(sim.select(F.col("src").alias("doc_id"), "jaccard"), "doc_id", "left")
                  .withColumn("kind", F.when(F.col("exact_key") == F.col("rep_key"), "exact").otherwise("near"))
                  .withColumn("similarity", F.when(F.col("kind") == "exact", F.lit(1.0)).otherwise(F.col("jaccard"))))
    # a representative's kind: 'exact' when every other member is an exact copy of it, else 'near'
    cluster_kind = (duplicates.filter(~F.col("is_representative")).groupBy("cluster_id")
                    .agg(F.when(F.max(F.col("kind") == "near"), "near").otherwise("exact").alias("ckind")))
    duplicates = (duplicates.join(cluster_kind, "cluster_id", "left")
                  .withColumn("kind", F.when(F.col("is_representative"), F.col("ckind")).otherwise(F.col("kind")))
                  .select("doc_id", "source", "cluster_id", "kind", "is_representative", "similarity",
                          "cluster_size"))
    return DedupResult(signatures=sigs, candidates=cands, components_rounds=cc.rounds, duplicates=duplicates,
                       deduped=remove_duplicates(docs, duplicates))
