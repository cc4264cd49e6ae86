"""Repeated-span removal: a scalable approximation of Lee et al. 2021's ExactSubstr on Spark.

ExactSubstr builds a suffix array over the whole token stream and removes every substring of >= 50 BPE tokens
occurring more than once (C4: 350 GB, < 12 h on 96 cores, ~600 GB RAM). Here, as datatrove's sentence dedup does,
texts are split into sentences (regex splitter), and every *span* — the shortest run of consecutive sentences,
starting at each sentence, that reaches ``min_words`` words, at most ``window`` sentences — is hashed on its
normalised text. Spans are counted across the corpus by an aggregation on the hash (combined per task before the
shuffle); a span occurring at least ``min_count`` times is removed from every document but the first (by ``doc_id``,
then position), or from all (``keep=none``), found by a join of the occurrences with the counts. The removed text is
recorded in the ``spans`` table with its count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import xxhash
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mixlake.errors import ConfigError
from mixlake.text import CachedNormalizer

# sentence ends: terminal punctuation (+ closing quotes/brackets) followed by whitespace, or a line break. The
# punctuation mark is matched (group 1 starts after it) rather than looked behind for: a lookbehind is tried at every
# position of the text, and the splitter ran 1.3x slower with it (same matches: tests/test_spans.py).
SENTENCE_END = re.compile(r"[.!?]([\"')\]]*\s+)|\n+")


@dataclass
class SpansConfig:
    """``spans`` group."""

    window: int = 3  # at most this many consecutive sentences per span (datatrove: 3)
    min_words: int = 40  # a span must have at least this many words (~50 GPT-2 tokens, Lee et al.'s length)
    min_count: int = 2  # remove spans occurring at least this often (Lee et al.: more than once)
    keep: str = "first"  # first: keep the first occurrence; none: remove every occurrence
    input_table: str = "auto"

    def __post_init__(self) -> None:
        if self.keep not in ("first", "none"):
            raise ConfigError("config key 'spans.keep' must be first or none")
        if self.window < 1 or self.min_words < 1 or self.min_count < 2:
            raise ConfigError("config keys 'spans.window' >= 1, 'spans.min_words' >= 1, 'spans.min_count' >= 2")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the sentences of ``text`` (end includes trailing whitespace)."""
    out = []
    start = 0
    for m in SENTENCE_END.finditer(text):
        end_of_words = m.start(1) if m.start(1) >= 0 else m.start()  # after the punctuation mark, if any
        if m.end() > start and text[start:end_of_words].strip():
            out.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        out.append((start, len(text)))
    return out


def document_spans(text: str, cfg: SpansConfig,
                   norm: CachedNormalizer | None = None) -> list[tuple[int, int, int, int]]:
    """(hash, start, end, n_words) of every span of ``text`` (see module docstring).

    The hash is of ``normalize(text[start:end])``, computed as the normalised sentences joined by a space: every
    sentence boundary follows whitespace (the splitter cuts after it), so no word crosses one and the two are equal
    (tests check it against the direct form). Each sentence is normalised once, not once per span it is part of.
    """
    norm = norm or CachedNormalizer()
    sents = split_sentences(text)
    segs = [text[s:e] for s, e in sents]
    words = [len(seg.split()) for seg in segs]
    norms: list[str | None] = [None] * len(segs)
    out = []
    for i in range(len(sents)):
        total = 0
        for j in range(i, min(i + cfg.window, len(sents))):
            total += words[j]
            if total >= cfg.min_words:
                for k in range(i, j + 1):
                    if norms[k] is None:
                        norms[k] = norm(segs[k])
                key = " ".join(n for n in norms[i:j + 1] if n)
                out.append((xxhash.xxh3_64_intdigest(key.encode()) - (1 << 63), sents[i][0], sents[j][1], total))
                break
    return out


SPAN_DDL = "doc_id string, span_hash bigint, start int, end int, n_words int"


def span_occurrences(docs: DataFrame, cfg: SpansConfig) -> DataFrame:
    """One row per span occurrence: ``(doc_id, span_hash, start, end, n_words)``."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        norm = CachedNormalizer()  # one word cache per task
        for b in batches:
            ids, hs, ss, es, ns = [], [], [], [], []
            for doc_id, text in zip(b.column("doc_id").to_pylist(), b.column("text").to_pylist(), strict=True):
                for h, s, e, n in document_spans(text or "", cfg, norm):
                    ids.append(doc_id)
                    hs.append(h)
                    ss.append(s)
                    es.append(e)
                    ns.append(n)
            yield pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(hs, pa.int64()),
                                              pa.array(ss, pa.int32()), pa.array(es, pa.int32()),
                                              pa.array(ns, pa.int32())],
                                             names=["doc_id", "span_hash", "start", "end", "n_words"])

    return docs.select("doc_id", "text").mapInArrow(run, SPAN_DDL)


def span_counts(occ: DataFrame, cfg: SpansConfig) -> DataFrame:
    """One row per span occurring at least ``min_count`` times: ``span_hash``, ``count``, ``n_docs``, ``n_words``
    (the largest of its occurrences') and ``first`` = (doc_id, start, end) of its first occurrence (by doc_id, then
    position).

    A plain aggregation, so Spark combines each task's rows per hash before the shuffle: a span repeated a million
    times (the case this stage exists for) arrives as one partial row per task, where a window partitioned by the
    hash would sort all its occurrences on one task.
    """
    return (occ.groupBy("span_hash")
            .agg(F.count(F.lit(1)).alias("count"), F.countDistinct("doc_id").alias("n_docs"),
                 F.max("n_words").alias("n_words"), F.min(F.struct("doc_id", "start", "end")).alias("first"))
            .filter(F.col("count") >= cfg.min_count))


def span_removals(occ: DataFrame, counts: DataFrame, cfg: SpansConfig) -> DataFrame:
    """``(doc_id, start, end)`` of every occurrence to cut: each occurrence of a span in ``counts`` except its first
    (``keep=first``), or all of them (``keep=none``).

    A join on the hash: when ``counts`` is small Spark broadcasts it, and when it is not, adaptive execution splits a
    skewed hash partition of ``occ`` over several tasks (``spark.sql.adaptive.skewJoin``); no task holds a hot span's
    occurrences in memory, as a window over the hash would.
    """
    rem = occ.join(counts.select("span_hash", "first"), "span_hash")
    if cfg.keep == "first":
        rem = rem.filter((F.col("doc_id") != F.col("first.doc_id")) | (F.col("start") != F.col("first.start")))
    return rem.select("doc_id", "start", "end")


def spans_table(counts: DataFrame, docs: DataFrame, cfg: SpansConfig) -> DataFrame:
    """The ``spans`` table: one row per repeated span — ``span_hash, count, n_docs, n_words, removed`` (occurrences
    cut) and ``text`` (its first occurrence, as written), most repeated first."""
    texts = docs.select(F.col("doc_id").alias("_doc_id"), "text")
    return (counts.join(texts, F.col("first.doc_id") == F.col("_doc_id"))
            .select("span_hash", "count", "n_docs", "n_words",
                    (F.col("count") - (1 if cfg.keep == "first" else 0)).alias("removed"),
                    F.expr("substring(text, first.start + 1, first.end - first.start)").alias("text"))
            .orderBy(F.desc("count"), "span_hash"))


def _cut(text: str, ranges: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for s, e in sorted(ranges):
        if s > pos:
            out.append(text[pos:s])
        pos = max(pos, e)
    out.append(text[pos:])
    return "".join(out).strip()


def remove_spans(docs: DataFrame, removals: DataFrame) -> DataFrame:
    """``docs`` with each document's removed ranges cut out; ``n_chars`` updated, ``removed_chars`` added."""
    ranges = removals.groupBy("doc_id").agg(F.collect_list(F.struct("start", "end")).alias("_ranges"))
    joined = docs.join(ranges, "doc_id", "left")
    cols = docs.columns

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            texts = b.column("text").to_pylist()
            rs = b.column("_ranges").to_pylist()
            new = [t if not r else _cut(t, [(x["start"], x["end"]) for x in r]) for t, r in zip(texts, rs,
                                                                                                 strict=True)]
            arrays = []
            for c in cols:
                if c == "text":
                    arrays.append(pa.array(new, pa.string()))
                elif c == "n_chars":
                    arrays.append(pa.array([len(t) for t in new], pa.int32()))
                else:
                    arrays.append(b.column(c))
            arrays.append(pa.array([len(t) - len(n) for t, n in zip(texts, new, strict=True)], pa.int32()))
            yield pa.RecordBatch.from_arrays(arrays, names=[*cols, "removed_chars"])

    schema = docs.select(*cols).schema.simpleString()[len("struct<"):-1].replace(":", " ")
    return joined.mapInArrow(run, f"{schema}, removed_chars int")
