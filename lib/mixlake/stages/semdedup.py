"""Stage ``semdedup``: semantic duplicates (SemDeDup) of the cleaned corpus → Delta ``semdeduped`` (the input's
schema, what the stages after it read), ``semantic_duplicates`` (every document removed at some eps of the sweep:
cluster, nearest earlier-ranked member and cosine, the kept document it is reported against, the smallest eps that
removes it, whether the configured eps does), ``semdedup_sweep`` (documents removed per eps, with example pairs just
above each cut-off), ``semdedup_clusters`` (size and removals per cluster) and ``semdedup_embeddings`` (the vectors,
keyed by document, text hash and embedder: a rerun with other clustering or eps settings does not re-embed).
See :mod:`mixlake.semdedup.semdedup`."""

from __future__ import annotations

import json
import logging
import time
from importlib.metadata import version
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.delta import (
    parquet_persister,
    read_table,
    replace_table,
    scratch_dir,
    table_exists,
    table_path,
    table_version,
)
from mixlake.semdedup.config import SemDedupConfig
from mixlake.semdedup.embed import embed
from mixlake.semdedup.semdedup import semantic_dedup, sweep_table
from mixlake.stages.dedup import quality_scores, source_priorities
from mixlake.stages.inputs import cleaned_input
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)
EXAMPLES_PER_EPS = 2  # per eps: the lowest-cosine pair in each of this many doc_id-hash halves


def embedder_key(sd: SemDedupConfig, source: str, input_version: int | None) -> str:
    """What an embedding depends on besides the text: the model (and, for the embedders fitted on the corpus, their
    settings and the input table's version)."""
    if sd.embedder == "wordllama":
        return f"wordllama=={version('wordllama')}:l2_supercat_256:max_chars={sd.max_chars}"
    params = {k: getattr(sd, k) for k in ("max_chars", "fit_sample", "seed")}
    params.update({k: getattr(sd, k) for k in (("w2v_dim", "w2v_min_count", "w2v_max_iter")
                                               if sd.embedder == "word2vec" else ("lsa_features", "lsa_dim"))})
    return f"{sd.embedder}:{json.dumps(params, sort_keys=True)}:{source}@{input_version}"


def cached_embeddings(spark: SparkSession, cfg: MixlakeConfig, docs: DataFrame, key: str,
                      persist: Any) -> tuple[DataFrame, dict[str, int]]:
    """``(doc_id, embedding)`` of every document of ``docs``: reused from ``semdedup_embeddings`` where the document,
    its text hash and the embedder key match, computed for the rest; the table is rewritten when anything was
    computed (it then holds exactly these documents)."""
    path = table_path(cfg.lake, "semdedup_embeddings")
    keyed = docs.select("doc_id", "text", F.xxhash64("text").alias("text_hash"))
    if table_exists(spark, path):
        cached = (spark.read.format("delta").load(path).filter(F.col("embedder") == key)
                  .select("doc_id", "text_hash", "embedding"))
    else:
        cached = spark.createDataFrame([], "doc_id string, text_hash long, embedding array<float>")
    missing = keyed.join(cached.select("doc_id", "text_hash"), ["doc_id", "text_hash"], "left_anti")
    n_missing = missing.count()
    if n_missing:
        new = persist(embed(missing.select("doc_id", "text"), cfg.semdedup)
                      .join(missing.select("doc_id", "text_hash"), "doc_id"), "new_embeddings")
        kept = cached.join(keyed.select("doc_id", "text_hash"), ["doc_id", "text_hash"], "left_semi")
        table = persist(kept.unionByName(new.select("doc_id", "text_hash", "embedding")), "embeddings")
        replace_table(table.withColumn("embedder", F.lit(key)), path)
    current = (spark.read.format("delta").load(path).filter(F.col("embedder") == key)
               .join(keyed.select("doc_id", "text_hash"), ["doc_id", "text_hash"], "left_semi")
               .select("doc_id", "embedding"))
    return current, {"embedded": n_missing}


def examples(members: DataFrame, docs: DataFrame) -> dict[float, list[str]]:
    """Per eps: pairs just above its cut-off (the lowest cosine that eps removes and the next smaller does not),
    texts abridged. One bounded aggregate (no window over the few eps values: each would be one hot key)."""
    text = docs.select("doc_id", F.substring("text", 1, 160).alias("t"))
    picked = (members.filter(F.col("eps_bucket").isNotNull())
              .groupBy("eps_bucket", F.pmod(F.xxhash64("doc_id"), F.lit(EXAMPLES_PER_EPS)).alias("half"))
              .agg(F.min(F.struct("cosine", "doc_id", "nearest_doc_id")).alias("m"))
              .select("eps_bucket", "m.*"))
    rows = (picked.join(text, "doc_id")
            .join(text.select(F.col("doc_id").alias("nearest_doc_id"), F.col("t").alias("nt")), "nearest_doc_id")
            .orderBy("eps_bucket", "cosine", "doc_id").collect())
    out: dict[float, list[str]] = {}
    for r in rows:
        out.setdefault(r.eps_bucket, []).append(
            f"cos={r.cosine:.4f} {r.doc_id[:12]} “{_flat(r.t)}” ~ {r.nearest_doc_id[:12]} “{_flat(r.nt)}”")
    return out


def _flat(s: str) -> str:
    return " ".join(s.split())


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    sd = cfg.semdedup
    source = cleaned_input(cfg, sd.input_table, stage="semdedup")
    docs = read_table(spark, cfg.lake, source)
    tmp = scratch_dir(cfg.lake, "semdedup")
    persist = parquet_persister(tmp)

    seconds: dict[str, float] = {}
    try:
        t0 = time.time()
        key = embedder_key(sd, source, table_version(spark, table_path(cfg.lake, source)))
        emb, emb_stats = cached_embeddings(spark, cfg, docs, key, persist)
        seconds["embed"] = time.time() - t0
        t0 = time.time()
        scores = quality_scores(spark, cfg)
        scored = docs if scores is None else docs.join(scores, "doc_id", "left")
        res = semantic_dedup(scored, emb, sd, source_priorities(cfg, cfg.dedup), persist)
        members = persist(res.members, "members")
        seconds["cluster_and_compare"] = time.time() - t0
        t0 = time.time()
        dup_path, out_path = table_path(cfg.lake, "semantic_duplicates"), table_path(cfg.lake, "semdeduped")
        replace_table(members.filter(F.col("eps_bucket").isNotNull() | F.col("removed"))
                      .select("doc_id", "source", "cluster", "cluster_size", "nearest_doc_id", "cosine",
                              "kept_doc_id", "kept_cosine", "eps_bucket", "removed"), dup_path)
        removed = members.filter("removed").select("doc_id")
        replace_table(docs.join(removed, "doc_id", "left_anti").select(*docs.columns), out_path,
                      partition_by=["source"])
        clusters_path = table_path(cfg.lake, "semdedup_clusters")
        replace_table(members.groupBy("cluster").agg(F.count(F.lit(1)).alias("size"),
                                                     F.sum(F.col("removed").cast("long")).alias("removed"))
                      .orderBy("cluster"), clusters_path)
        sweep = sweep_table(members, sd)
        ex = examples(members, docs)
        for row in sweep:
            row["examples"] = ex.get(row["eps"], [])
        sweep_path = table_path(cfg.lake, "semdedup_sweep")
        replace_table(spark.createDataFrame(sweep, "eps double, min_cosine double, docs_removed long, "
                                            "pct_removed double, configured boolean, examples array<string>"),
                      sweep_path)
        # counted on what was read and written, none derived from another
        n_in = docs.count()
        n_out = spark.read.format("delta").load(out_path).count()
        n_removed = spark.read.format("delta").load(dup_path).filter("removed").count()
        per_source = {r.source: {"in": int(r.n_in), "removed": int(r.n_removed or 0)} for r in
                      members.groupBy("source").agg(F.count(F.lit(1)).alias("n_in"),
                                                    F.sum(F.col("removed").cast("long")).alias("n_removed"))
                      .orderBy("source").collect()}
        n_members = sum(s["in"] for s in per_source.values())
        largest = spark.read.format("delta").load(clusters_path).filter(F.col("cluster") != "-") \
            .agg(F.max("size").alias("m"), F.count(F.lit(1)).alias("n")).first()
        seconds["write"] = time.time() - t0
    finally:
        storage.rmtree(tmp, cfg.s3)
    if n_members != n_in:
        raise AssertionError(f"semdedup: {n_in} documents in but {n_members} member rows (a document was lost "
                             "or doubled between embedding and clustering)")
    for s in sweep:
        log.info("semdedup eps=%g (cosine >= %.3f): %d documents (%.2f%%)%s", s["eps"], s["min_cosine"],
                 s["docs_removed"], s["pct_removed"], " <- configured" if s["configured"] else "")
    out = StageResult("semdedup", records_in=n_in, records_out=n_out, dropped=n_removed,
                      outputs={"semdeduped": table_version(spark, out_path),
                               "semantic_duplicates": table_version(spark, dup_path),
                               "semdedup_sweep": table_version(spark, sweep_path),
                               "semdedup_clusters": table_version(spark, clusters_path)},
                      details={"input_table": source, "embedder": sd.embedder, "embedder_key": key,
                               "eps": sd.eps, "center": res.center, "k": res.k,
                               "clusters": int(largest.n or 0) if largest else 0,
                               "largest_cluster": int(largest.m or 0) if largest else 0,
                               "split": vars(res.split), "per_source": per_source,
                               "sweep": [{k: v for k, v in s.items() if k != "examples"} for s in sweep],
                               "embedded": emb_stats["embedded"], "reused": n_in - emb_stats["embedded"],
                               "seconds": {k: round(v, 2) for k, v in seconds.items()}})
    out.check()
    return out
