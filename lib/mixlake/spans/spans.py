"""Repeated-span removal: a scalable approximation of Lee et al. 2021's ExactSubstr on Spark.

ExactSubstr builds a suffix array over the whole token stream and removes every substring of >= 50 BPE tokens
occurring more than once (C4: 350 GB, < 12 h on 96 cores, ~600 GB RAM). Here, as datatrove's sentence dedup does,
texts are split into sentences (regex splitter), and every *span* — the shortest run of consecutive sentences,
starting at each sentence, that reaches ``min_words`` words, at most ``window`` sentences — is hashed on its
normalised text. Spans are counted across the corpus with one shuffle of (hash, doc) rows; a span occurring at least
``min_count`` times is removed from every document but the first (by ``doc_id``, then position), or from all
(``keep=none``). The removed text is recorded in the ``spans`` table with its count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import xxhash
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from mixlake.errors import ConfigError
from mixlake.text import normalize

# sentence ends: terminal punctuation (+ closing quotes/brackets) followed by whitespace, or a line break
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")


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
        if m.end() > start and text[start:m.start()].strip():
            out.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        out.append((start, len(text)))
    return out


def document_spans(text: str, cfg: SpansConfig) -> list[tuple[int, int, int, int]]:
    """(hash, start, end, n_words) of every span of ``text`` (see module docstring)."""
    sents = split_sentences(text)
    words = [len(text[s:e].split()) for s, e in sents]
    out = []
    for i in range(len(sents)):
        total = 0
        for j in range(i, min(i + cfg.window, len(sents))):
            total += words[j]
            if total >= cfg.min_words:
                s, e = sents[i][0], sents[j][1]
                h = xxhash.xxh3_64_intdigest(normalize(text[s:e]).encode()) - (1 << 63)
                out.append((h, s, e, total))
                break
    return out


SPAN_DDL = "doc_id string, span_hash bigint, start int, end int, n_words int"


def span_occurrences(docs: DataFrame, cfg: SpansConfig) -> DataFrame:
    """One row per span occurrence: ``(doc_id, span_hash, start, end, n_words)``."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            ids, hs, ss, es, ns = [], [], [], [], []
            for doc_id, text in zip(b.column("doc_id").to_pylist(), b.column("text").to_pylist(), strict=True):
                for h, s, e, n in document_spans(text or "", cfg):
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


def repeated_spans(occ: DataFrame, cfg: SpansConfig) -> DataFrame:
    """Occurrences of spans seen at least ``min_count`` times, with ``count``, ``n_docs`` and ``remove``."""
    counts = (occ.groupBy("span_hash").agg(F.count(F.lit(1)).alias("count"),
                                           F.countDistinct("doc_id").alias("n_docs"))
              .filter(F.col("count") >= cfg.min_count))
    rep = occ.join(counts, "span_hash")
    if cfg.keep == "first":
        w = Window.partitionBy("span_hash").orderBy("doc_id", "start")
        rep = rep.withColumn("remove", F.row_number().over(w) > 1)
    else:
        rep = rep.withColumn("remove", F.lit(True))
    return rep


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
