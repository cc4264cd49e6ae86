"""Decontamination: remove benchmark text from the training corpus and say which eval items it contained.

Follows GPT-3 (Brown et al. 2020, appendix C: 13-gram overlap, the match cut out with 200 characters on each side,
fragments under 200 characters dropped, documents split more than 10 times dropped) as implemented by NeMo Curator
(``nemo_curator.modules.TaskDecontamination``, which adds the frequency guard: an n-gram found in more than
``max_train_frequency`` training documents is common text, not contamination), with ``drop_document`` as datatrove's
and dolma's alternative. Unlike them it also reports per eval item whether it was seen, so that clean and dirty
subsets can be scored apart (GPT-3 appendix C, Llama 2 A.6).

``decontaminate`` is a pure DataFrame transform; the ``decontam`` stage writes its outputs (see
:mod:`mixlake.stages.decontam`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from mixlake.decontam.config import DecontamConfig
from mixlake.decontam.index import NgramIndex
from mixlake.decontam.match import HIT_DDL, hits_udf, remove_spans

ACTION_SCHEMA = T.StructType([
    T.StructField("text", T.StringType(), True),
    T.StructField("action", T.StringType(), False),
    T.StructField("regions", T.IntegerType(), False),
    T.StructField("chars_removed", T.IntegerType(), False),
])


BROADCAST_MAX_DOCS = 200_000  # contaminated documents (doc_id + spans, or + new text) broadcast to the corpus joins


@dataclass
class Decontaminated:
    documents: DataFrame  # the input's schema: untouched documents, plus the changed ones with their new text
    contamination: DataFrame  # one row per (document, n-gram occurrence, eval item), with the document's action
    actions: DataFrame  # one row per contaminated document: doc_id, source, action, regions, chars_removed
    persisted: list[DataFrame]  # what decontaminate cached (matching rows, hits, spans, actions): see unpersist

    def unpersist(self) -> None:
        for df in self.persisted:
            df.unpersist()


def find_hits(docs: DataFrame, index: NgramIndex, cfg: DecontamConfig) -> DataFrame:
    """Every occurrence of an indexed n-gram in ``docs`` (``HIT_DDL``): the one pass over the corpus text."""
    return docs.select("doc_id", "source", "text").mapInArrow(hits_udf(index, cfg.normalize), HIT_DDL)


def with_train_frequency(hits: DataFrame) -> DataFrame:
    """``hits`` with ``train_docs``: how many training documents contain the hit's n-gram (a distributed
    aggregate over the hits, which are few; the frequency guard compares it with ``max_train_frequency``)."""
    freq = hits.groupBy("n", "ngram_hash").agg(F.countDistinct("doc_id").alias("train_docs"))
    return hits.join(freq, ["n", "ngram_hash"])


def decontaminate(docs: DataFrame, index: NgramIndex, cfg: DecontamConfig) -> Decontaminated:
    spark = docs.sparkSession
    # persisted before the frequency join reads it twice: the matching pass over the corpus runs once
    raw = find_hits(docs, index, cfg).persist(StorageLevel.MEMORY_AND_DISK)
    hits = with_train_frequency(raw).persist(StorageLevel.MEMORY_AND_DISK)
    valid = hits.filter(F.col("train_docs") <= cfg.max_train_frequency)
    spans = (valid.groupBy("doc_id")
             .agg(F.array_sort(F.collect_set(F.struct("char_start", "char_end"))).alias("spans"))
             .persist(StorageLevel.MEMORY_AND_DISK))
    # Contaminated documents are usually few: then they are broadcast to the corpus's joins, which saves shuffling
    # the whole corpus by doc_id three times; above BROADCAST_MAX_DOCS the joins stay shuffle joins (bounded memory).
    small = spans.count() <= BROADCAST_MAX_DOCS

    def side(df: DataFrame) -> DataFrame:
        return F.broadcast(df) if small else df

    touched = docs.join(side(spans), "doc_id")
    if cfg.mode == "drop_document":
        actions = touched.select("doc_id", "source", F.lit(None).cast("string").alias("text"),
                                 F.lit("dropped_contaminated").alias("action"),
                                 F.size("spans").cast("int").alias("regions"),
                                 F.col("n_chars").cast("int").alias("chars_removed"))
    else:
        margin, min_frag, max_splits = cfg.margin_chars, cfg.min_fragment_chars, cfg.max_splits

        @F.udf(ACTION_SCHEMA)
        def cut(text: str, sp: list) -> tuple:
            return remove_spans(text, [(r.char_start, r.char_end) for r in sp], margin, min_frag, max_splits)

        actions = (touched.withColumn("_a", cut("text", "spans"))
                   .select("doc_id", "source", "_a.text", "_a.action", "_a.regions", "_a.chars_removed"))
    actions = actions.persist(StorageLevel.MEMORY_AND_DISK)
    # one pass over the corpus: untouched documents as they are, changed ones with their new text, dropped ones out
    acted = actions.select("doc_id", F.col("text").alias("_new_text"), F.lit(True).alias("_acted"))
    documents = (docs.join(side(acted), "doc_id", "left")
                 .filter(F.col("_acted").isNull() | F.col("_new_text").isNotNull())
                 .withColumn("n_chars", F.when(F.col("_acted").isNull(), F.col("n_chars"))
                             .otherwise(F.length("_new_text")).cast(docs.schema["n_chars"].dataType))
                 .withColumn("text", F.coalesce("_new_text", "text"))
                 .select(*docs.columns))
    items = spark.createDataFrame([(i, it.task, it.item_id) for i, it in enumerate(index.items)],
                                  "item int, task string, item_id string")
    contamination = (hits.join(F.broadcast(items), "item")
                     .join(actions.select("doc_id", "action"), "doc_id", "left")
                     .withColumn("action", F.when(F.col("train_docs") > cfg.max_train_frequency,
                                                  F.lit("ignored_common")).otherwise(F.col("action")))
                     .select("doc_id", "source", "task", "item_id", "ngram", "n", "char_start", "char_end",
                             "train_docs", "action"))
    return Decontaminated(documents, contamination, actions.drop("text"), [raw, hits, spans, actions])


def seen_items(contamination: DataFrame) -> set[tuple[str, str]]:
    """(task, item_id) of every eval item matched in the corpus (common n-grams aside): eval-sized."""
    valid = contamination.filter(F.col("action") != "ignored_common")
    return {(r.task, r.item_id) for r in valid.select("task", "item_id").distinct().collect()}


def task_counts(contamination: DataFrame, actions: DataFrame, index: NgramIndex,
                dirty: set[tuple[str, str]]) -> list[dict[str, object]]:
    """Per task: items, items checked, items contaminated (``dirty``: :func:`seen_items`, and %), documents hit /
    changed / dropped, n-gram occurrences ignored as common. Eval-sized results only are collected."""
    valid = contamination.filter(F.col("action") != "ignored_common")
    per_task = {r.task: r for r in
                valid.join(actions.select("doc_id", F.col("action").alias("doc_action")), "doc_id")
                .groupBy("task")
                .agg(F.countDistinct("doc_id").alias("docs_hit"),
                     F.countDistinct(F.when(F.col("doc_action") == "spans_removed", F.col("doc_id"))).alias("changed"),
                     F.countDistinct(F.when(F.col("doc_action").startswith("dropped"), F.col("doc_id")))
                     .alias("dropped"))
                .collect()}
    common = {r.task: r.n for r in contamination.filter(F.col("action") == "ignored_common")
              .groupBy("task").agg(F.count(F.lit(1)).alias("n")).collect()}
    out = []
    for task in sorted({it.task for it in index.items}):
        items = [it for it in index.items if it.task == task]
        n_dirty = sum((task, it.item_id) in dirty for it in items)
        r = per_task.get(task)
        out.append({"task": task, "items": len(items), "items_checked": sum(it.checked for it in items),
                    "items_contaminated": n_dirty, "pct_contaminated": 100.0 * n_dirty / max(1, len(items)),
                    "docs_hit": int(r.docs_hit) if r else 0, "docs_changed": int(r.changed) if r else 0,
                    "docs_dropped": int(r.dropped) if r else 0, "ngrams_ignored_common": int(common.get(task, 0))})
    return out
