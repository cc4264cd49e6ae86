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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mixlake.errors import ConfigError
from mixlake.text import PY_WS, UNSPACED_RE2, CachedNormalizer, normalize_word, py_not_alnum_re2

# sentence ends: terminal punctuation (+ closing quotes/brackets) followed by whitespace, or a line break. The
# punctuation mark is matched (group 1 starts after it) rather than looked behind for: a lookbehind is tried at every
# position of the text, and the splitter ran 1.3x slower with it (same matches: tests/test_spans.py).
SENTENCE_END = re.compile(r"[.!?]([\"')\]]*\s+)|\n+")
# the same in RE2 for the batch pass, Python's \s spelled out (RE2's is ASCII only); RE2 and Python's re both take the
# leftmost match and prefer the first alternative and the longest greedy run, so the matches are the same
SENTENCE_END_RE2 = "[.!?][\"')\\]]*" + PY_WS + "+|\n+"
# marks each sentence end in the batch pass (a noncharacter); a text that contains it goes the per-document way
_MARK = "\uffff"


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


# doc_first: the first occurrence of its hash in its document (by position), so that a span's document count is a
# sum, not a distinct count (which Spark plans as a second aggregation over every (hash, doc_id) pair)
SPAN_DDL = "doc_id string, span_hash bigint, start int, end int, n_words int, doc_first boolean"


def _ints(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def _joined(values: pa.Array, groups: np.ndarray, n: int) -> pa.Array:
    """``n`` strings: the ``values`` of each group (``groups``: its index in 0..n-1, non-decreasing) joined by a
    space; "" for a group without values."""
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(groups, minlength=n), out=offsets[1:])
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), " ")


def _normalized_pieces(pieces: pa.Array, norm: CachedNormalizer) -> pa.Array:
    """:func:`mixlake.text.normalize` (the default configuration) of every string of ``pieces`` at once: not-alnum →
    space and unspaced-script characters made words in RE2, the split in Arrow, and each distinct word normalised by
    :func:`normalize_word` once (memoised in ``norm``'s bounded word cache, across batches). Equal to ``normalize``
    string for string (tests)."""
    # runs of what is neither alnum nor a plain space become one space (far fewer matches than a space for each)
    x = pc.replace_substring_regex(pieces, py_not_alnum_re2()[:-1] + " ]+", " ")
    if pc.any(pc.match_substring_regex(x, UNSPACED_RE2)).as_py():
        x = pc.replace_substring_regex(x, UNSPACED_RE2, r" \1 ")
    split = pc.split_pattern(x, " ")
    flat = pc.list_flatten(split)
    keep = _ints(pc.utf8_length(flat)) > 0
    parents = _ints(pc.list_parent_indices(split))[keep]
    enc = pc.dictionary_encode(flat.filter(pa.array(keep)))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    words = norm.words
    if len(words) > norm.max_words:
        words.clear()
    normed = []
    for w in enc.dictionary.to_pylist():
        n = words.get(w)
        if n is None:
            n = words[w] = normalize_word(w, norm.cfg)
        normed.append(n)
    return _joined(pc.take(pa.array(normed, pa.string()), enc.indices), parents, len(pieces))


def batch_spans(texts: pa.Array, cfg: SpansConfig,
                norm: CachedNormalizer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`document_spans` for a whole batch of texts at once: ``(text index, hash, start, end, n_words)`` arrays,
    in the order ``document_spans`` yields them text by text.

    The sentence ends are found by one RE2 pass over the batch (each marked, then split on the mark), the words of
    every sentence counted and normalised by Arrow kernels, the span ends (the first of up to ``window`` sentences
    reaching ``min_words``) by a cumulative sum, and the key of each span — its sentences' non-empty normalised forms
    joined by a space — by a list join; only the xxh3 hashing is a Python loop (one C call per span). Texts containing
    the mark character U+FFFF take :func:`document_spans`. ``norm`` holds the word cache (one per task). Same spans
    and hashes (Hypothesis test and the sample)."""
    n = len(texts)
    x = pc.fill_null(texts, "")
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    odd = np.flatnonzero(np.asarray(pc.match_substring(x, _MARK).to_numpy(zero_copy_only=False), dtype=bool))
    if len(odd):
        x = pc.if_else(pa.array(np.isin(np.arange(n), odd)), "", x)
    pieces_l = pc.split_pattern(pc.replace_substring_regex(x, SENTENCE_END_RE2, "\\0" + _MARK), _MARK)
    pieces = pc.list_flatten(pieces_l)
    parents = _ints(pc.list_parent_indices(pieces_l))
    lengths = _ints(pc.utf8_length(pieces))
    ends = np.cumsum(lengths)
    first_piece = _ints(pieces_l.offsets)[:-1] - int(pieces_l.offsets[0].as_py())
    base = np.zeros(n, dtype=np.int64)
    has = first_piece < len(pieces)
    base[has] = (ends - lengths)[first_piece[has]]
    # a sentence is a piece with a non-whitespace character (split_sentences' strip() test)
    # words as str.split() (trimmed first: Arrow keeps an empty word for leading whitespace, and pyarrow 26's
    # whitespace split sometimes keeps a last whitespace character, see mixlake.quality.signals)
    trimmed = pc.utf8_trim_whitespace(pieces)
    sent = _ints(pc.list_value_length(pc.utf8_split_whitespace(trimmed)))
    sent[_ints(pc.utf8_length(trimmed)) == 0] = 0  # Arrow splits "" into [""], str.split() into []
    keep = sent > 0
    s_doc, s_words = parents[keep], sent[keep]
    s_end = ends[keep] - base[s_doc]
    s_start = s_end - lengths[keep]
    m = len(s_doc)
    cum = np.concatenate([[0], np.cumsum(s_words)])
    last = np.full(m, -1, dtype=np.int64)
    total = np.zeros(m, dtype=np.int64)
    idx = np.arange(m)
    for k in range(cfg.window):
        j = idx + k
        ok = j < m
        ok[ok] &= s_doc[j[ok]] == s_doc[idx[ok]]
        t = np.zeros(m, dtype=np.int64)
        t[ok] = cum[j[ok] + 1] - cum[idx[ok]]
        found = ok & (last < 0) & (t >= cfg.min_words)
        last[found] = j[found]
        total[found] = t[found]
    starts = np.flatnonzero(last >= 0)
    stops = last[starts]
    normed = _normalized_pieces(pieces.filter(pa.array(keep)), norm)
    # each span's key: the normalised forms of its sentences that are not empty, joined by a space (as a list
    # array, not binary_join_element_wise with null_handling="skip": in pyarrow 26 that returns fewer rows than its
    # inputs when a row is all null, so a span of punctuation-only sentences would lose its key)
    n_sent = stops - starts + 1
    span_of = np.repeat(np.arange(len(starts)), n_sent)
    member = starts[span_of] + (np.arange(len(span_of)) - np.repeat(np.cumsum(n_sent) - n_sent, n_sent))
    values = pc.take(normed, pa.array(member))
    nonempty = _ints(pc.utf8_length(values)) > 0
    keys = _joined(values.filter(pa.array(nonempty)), span_of[nonempty], len(starts))
    h = xxhash.xxh3_64_intdigest
    hashes = np.fromiter((h(k) for k in keys.cast(pa.binary()).to_pylist()), dtype=np.uint64, count=len(keys))
    out = [s_doc[starts], (hashes ^ np.uint64(1 << 63)).view(np.int64), s_start[starts], s_end[stops],
           total[starts]]
    if len(odd):  # the texts with the mark, per document, merged back in text order
        extra = [(i, *sp) for i in odd for sp in document_spans(texts[int(i)].as_py() or "", cfg, norm)]
        if extra:
            cols = [np.concatenate([o, np.array([e[c] for e in extra], dtype=np.int64)]) for c, o in enumerate(out)]
            order = np.argsort(cols[0], kind="stable")
            out = [c[order] for c in cols]
    return out[0], out[1], out[2], out[3], out[4]


def first_in_document(doc: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """For rows in document-then-position order: whether each is the first row of its (document, hash) pair."""
    order = np.lexsort((hashes, doc))  # stable: equal pairs keep their position order
    d, h = doc[order], hashes[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (d[1:] != d[:-1]) | (h[1:] != h[:-1])
    out = np.empty(len(order), dtype=bool)
    out[order] = first
    return out


def span_occurrences(docs: DataFrame, cfg: SpansConfig) -> DataFrame:
    """One row per span occurrence: ``(doc_id, span_hash, start, end, n_words, doc_first)``, by
    :func:`batch_spans`."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        norm = CachedNormalizer()  # one word cache per task
        for b in batches:
            doc, hs, ss, es, ns = batch_spans(b.column("text"), cfg, norm)
            yield pa.RecordBatch.from_arrays([pc.take(b.column("doc_id"), pa.array(doc)), pa.array(hs, pa.int64()),
                                              pa.array(ss, pa.int32()), pa.array(es, pa.int32()),
                                              pa.array(ns, pa.int32()), pa.array(first_in_document(doc, hs))],
                                             names=["doc_id", "span_hash", "start", "end", "n_words", "doc_first"])

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
            .agg(F.count(F.lit(1)).alias("count"), F.count(F.when(F.col("doc_first"), 1)).alias("n_docs"),
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


def removal_ranges(removals: DataFrame) -> DataFrame:
    """``(doc_id, _ranges)``: the ranges to cut from each document that loses a span (one row per such document)."""
    return removals.groupBy("doc_id").agg(F.collect_list(F.struct("start", "end")).alias("_ranges"))


def cut_ranges(docs: DataFrame, ranges: DataFrame) -> DataFrame:
    """``docs`` with the ``ranges`` (:func:`removal_ranges`) of each document cut out; ``n_chars`` updated,
    ``removed_chars`` added. Documents without ranges pass through unchanged."""
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


def remove_spans(docs: DataFrame, removals: DataFrame) -> DataFrame:
    """``docs`` with each document's removed ranges cut out; ``n_chars`` updated, ``removed_chars`` added."""
    return cut_ranges(docs, removal_ranges(removals))


def is_blank(text: Column | str = "text") -> Column:
    """Nothing but whitespace is left: the document is dropped from ``documents_clean``."""
    return F.length(F.trim(text)) == 0


def removal_stats(docs: DataFrame, ranges: DataFrame) -> DataFrame:
    """One row: ``emptied`` (documents blank after the cut, so not written) and ``removed_chars`` (characters cut
    from the documents that are written), computed by cutting again only the documents it can concern — those with
    ranges and those already blank — rather than every document (the others lose nothing and stay non-blank)."""
    concerned = docs.join(ranges.select("doc_id", F.lit(True).alias("_cut")), "doc_id", "left").filter(
        F.col("_cut").isNotNull() | is_blank()).drop("_cut")
    cut = cut_ranges(concerned, ranges)
    return cut.agg(F.count(F.when(is_blank(), 1)).alias("emptied"),
                   F.coalesce(F.sum(F.when(~is_blank(), F.col("removed_chars"))), F.lit(0)).cast("long")
                   .alias("removed_chars"))
