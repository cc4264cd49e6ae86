"""Matching the corpus against the eval index, and cutting matches out of a document.

Per Arrow batch (``mapInArrow``): dedup's vectorised word hashing and n-gram hashing
(:func:`mixlake.dedup.minhash.word_hashes` / ``shingle_hashes``) and a sorted-array membership test flag the
documents that contain an indexed n-gram; only those (a tiny fraction of a corpus) are re-tokenised in Python with
character offsets, to emit one hit row per (document, n-gram position, eval item) with the matched span.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from mixlake.decontam.index import NgramIndex, ngram_hashes, word_hash_array, words_with_spans
from mixlake.dedup.minhash import _M, fmix64, word_hashes
from mixlake.text import NormalizeConfig

HIT_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("source", pa.string()), ("n", pa.int32()), ("ngram_hash", pa.int64()),
    ("item", pa.int32()), ("char_start", pa.int32()), ("char_end", pa.int32()), ("ngram", pa.string()),
])
HIT_DDL = ("doc_id string, source string, n int, ngram_hash bigint, item int, char_start int, char_end int, "
           "ngram string")
MAX_NGRAM_TEXT = 1000  # characters of the matched text kept in a hit row


def candidate_docs(texts: pa.Array, index: NgramIndex, norm: NormalizeConfig) -> np.ndarray:
    """Row numbers of the documents of a batch that contain at least one indexed n-gram (vectorised prefilter).

    Dedup's word hashing, then one pass of ``m``-gram hashes (``m`` = the index's smallest n; the same polynomial
    :func:`mixlake.dedup.minhash.shingle_hashes` computes) looked up in the index's prefilter through its bitmap
    (:meth:`NgramIndex.contains`): a document with an indexed n-gram of any size contains that n-gram's first
    ``m`` words. Windows that straddle two documents are ignored. A candidate is then matched exactly
    (:func:`doc_hits`); one that shares only an ``m``-gram with an eval text has no hit.
    """
    m = index.prefilter_n
    wh, offsets = word_hashes(texts, norm)
    n_docs = len(offsets) - 1
    total = len(wh)
    if not m or total < m:
        return np.zeros(0, dtype=np.int64)
    doc_of_word = np.repeat(np.arange(n_docs), np.diff(offsets))
    with np.errstate(over="ignore"):
        windows = wh[: total - m + 1].copy()
        for j in range(1, m):
            windows = windows * _M + wh[j: total - m + 1 + j]
    first = doc_of_word[: len(windows)]
    hit = np.flatnonzero(index.contains(0, fmix64(windows)) & (first == doc_of_word[m - 1:]))
    return np.unique(first[hit])


def doc_hits(text: str, index: NgramIndex, norm: NormalizeConfig) -> list[tuple[int, int, int, int, int]]:
    """(n, ngram hash, item, char start, char end) of every indexed n-gram occurrence in one document."""
    words, starts, ends = words_with_spans(text, norm)
    wh = word_hash_array(words)
    out = []
    for n in index.sizes:
        h = ngram_hashes(wh, n)
        pos = np.flatnonzero(index.contains(n, h))
        for p, items in zip(pos, index.lookup(n, h[pos]), strict=True):
            for item in items:
                out.append((n, int(h[p]), int(item), starts[p], ends[p + n - 1]))
    return out


def hits_udf(index: NgramIndex, norm: NormalizeConfig) -> Callable[[Iterator[pa.RecordBatch]],
                                                                  Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function: (doc_id, source, text) batches → ``HIT_SCHEMA`` rows."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            texts = batch.column("text")
            rows: list[tuple] = []
            for d in candidate_docs(texts, index, norm):
                text = texts[int(d)].as_py()
                doc_id, source = batch.column("doc_id")[int(d)].as_py(), batch.column("source")[int(d)].as_py()
                for n, h, item, s, e in doc_hits(text, index, norm):
                    rows.append((doc_id, source, n, h - (1 << 64) if h >= 1 << 63 else h, item, s, e,
                                 text[s:e][:MAX_NGRAM_TEXT]))
            if rows:
                cols = list(zip(*rows, strict=True))
                yield pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, HIT_SCHEMA,
                                                                                            strict=True)],
                                                 schema=HIT_SCHEMA)

    return run


def remove_spans(text: str, spans: list[tuple[int, int]], margin: int, min_fragment: int,
                 max_splits: int) -> tuple[str | None, str, int, int]:
    """GPT-3 (appendix C) / NeMo Curator span removal: (new text or None when dropped, action, regions cut,
    characters removed).

    Every span is widened by ``margin`` characters on both sides; overlapping or touching regions merge; a document
    with more than ``max_splits`` regions is dropped (``dropped_too_many_splits``); the fragments left between
    regions shorter than ``min_fragment`` characters (after stripping whitespace) are dropped, and the rest are
    joined by a blank line (``spans_removed``); no fragment left → ``dropped_no_fragment_left``.
    """
    regions: list[list[int]] = []
    for s, e in sorted((max(0, s - margin), min(len(text), e + margin)) for s, e in spans):
        if regions and s <= regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], e)
        else:
            regions.append([s, e])
    if len(regions) > max_splits:
        return None, "dropped_too_many_splits", len(regions), len(text)
    bounds = [0, *(x for r in regions for x in r), len(text)]
    pieces = [text[bounds[i]: bounds[i + 1]].strip() for i in range(0, len(bounds), 2)]
    keep = [len(p) >= max(1, min_fragment) for p in pieces]
    if not any(keep):
        return None, "dropped_no_fragment_left", len(regions), len(text)
    kept = [p for p, k in zip(pieces, keep, strict=True) if k]
    return "\n\n".join(kept), "spans_removed", len(regions), len(text) - sum(len(p) for p in kept)
