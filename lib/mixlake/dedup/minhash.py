"""MinHash signatures, vectorised per Arrow batch: the hot path of dedup.

Follows datatrove's ``MinhashDedupSignature`` (word 5-gram shingles of normalised text, 64-bit shingle hashes,
``b x r`` permutations; Broder 1997) but computes a whole Arrow batch at a time instead of one document at a time:

1. punctuation → space with one RE2 regex over the batch, every character of a script written without spaces
   (Han, Kana, Thai, ...; :data:`mixlake.text.UNSPACED_RANGES`) made a token of its own — so Chinese, Japanese or
   Thai documents get character n-gram shingles, and mixed documents both kinds — and whitespace split
   (``pyarrow.compute``, C++);
2. the batch's *distinct* words are normalised (NFKC, lowercase, digits → 0) and hashed with xxh3-64 once each;
3. 64-bit shingle hashes for every word n-gram of every document, with numpy over the flat word-hash array
   (a polynomial combination of the n word hashes, finalised with murmur3's fmix64);
4. the MinHash matrix from the flat shingle hashes and per-document row offsets with ``rensa``
   (``RMinHash.digest_matrix_from_flat_token_hashes``, Rust): k 32-bit minima per document;
5. LSH band keys: each band's r minima combined into one 64-bit hash.

The same pass yields the exact-dedup key (xxh3-128 of the normalised word-hash sequence), so exact and near dedup
share one read of the text. Why this design rather than a per-document UDF, datasketch or Spark SQL higher-order
functions: ``bench/dedup_bench.py`` measures all of them in one Spark run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from mixlake.text import UNSPACED_RE2, NormalizeConfig

# punctuation (anything but letters and numbers; and "_", as Python's [^\w\s]|_ in mixlake.text) and every
# whitespace character but the plain space
SEPARATOR_RE2 = r"[^\p{L}\p{N} ]|_"
_M = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class MinHashParams:
    ngram: int
    bands: int
    rows: int
    seed: int
    normalize: NormalizeConfig

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


def fmix64(h: np.ndarray) -> np.ndarray:
    """murmur3 64-bit finaliser (in place on a uint64 array)."""
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return h


def word_hashes(texts: pa.Array, norm: NormalizeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint64 word hashes, int64 offsets of each document's words) for a batch of texts."""
    x = pc.fill_null(texts, "")
    if norm.strip_punctuation:
        # punctuation and every kind of whitespace become one plain space, so a literal split on " " finds the words
        # (empty words between adjacent spaces are dropped below): 2x faster than utf8_split_whitespace, and free of
        # its stray-whitespace defect checked for below
        x = pc.replace_substring_regex(x, SEPARATOR_RE2, " ")
    # unspaced scripts (CJK, Thai, ...): each character is a token, so their n-grams are character n-grams
    if pc.any(pc.match_substring_regex(x, UNSPACED_RE2)).as_py():
        x = pc.replace_substring_regex(x, UNSPACED_RE2, r" \1 ")
    words = pc.split_pattern(x, " ") if norm.strip_punctuation else pc.utf8_split_whitespace(x)
    if isinstance(words, pa.ChunkedArray):
        words = words.combine_chunks()
    if not norm.strip_punctuation and pc.any(pc.match_substring_regex(words.flatten(), r"\s")).as_py():
        # pyarrow 26's utf8_split_whitespace now and then keeps a whitespace character in a word (seen after a CJK
        # character at the end of a batch, varying from call to call): split such a batch in Python instead
        words = pa.array([t.split() if t is not None else [] for t in x.to_pylist()], pa.list_(pa.string()))
    offsets = words.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    flat = words.flatten()
    if len(flat) == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    enc = pc.dictionary_encode(flat)
    uniq = enc.dictionary
    # per-word normalisation on the batch's distinct words only, still in Arrow (C++)
    if norm.nfkc:
        uniq = pc.utf8_normalize(uniq, "NFKC")
    if norm.lowercase:
        uniq = pc.utf8_lower(uniq)
    if norm.digits_to_zero:
        uniq = pc.replace_substring_regex(uniq, r"\p{Nd}", "0")
    h = xxhash.xxh3_64_intdigest
    words_bytes = uniq.cast(pa.binary()).to_pylist()
    table = np.fromiter((h(w) for w in words_bytes), dtype=np.uint64, count=len(words_bytes))
    idx = enc.indices.to_numpy()
    if b"" in words_bytes:  # Arrow yields an empty word for leading/trailing whitespace: drop it
        keep = idx != words_bytes.index(b"")
        kept_before = np.concatenate([[0], np.cumsum(keep)])
        return table[idx[keep]], kept_before[offsets]
    return table[idx], offsets


def shingle_hashes(wh: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint64 shingle hashes, int64 row offsets) of every word n-gram that lies inside one document.

    A document with fewer than n words (but at least one) gets one shingle made of all its words.
    """
    lens = np.diff(offsets)
    n_docs = len(lens)
    total = len(wh)
    if total == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(n_docs + 1, dtype=np.int64)
    with np.errstate(over="ignore"):
        if total >= n:
            windows = wh[: total - n + 1].copy()
            for j in range(1, n):
                windows = windows * _M + wh[j : total - n + 1 + j]
            fmix64(windows)
        else:
            windows = np.zeros(0, dtype=np.uint64)
        # a window starting at word i is valid when it ends inside i's document
        ends = np.repeat(offsets[1:], lens)
        valid = (np.arange(len(windows)) + n) <= ends[: len(windows)]
        counts = np.maximum(lens - n + 1, 0)
        short = np.flatnonzero((lens > 0) & (lens < n))
        if len(short) == 0:
            return windows[valid], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # documents shorter than n: one shingle of all their words, spliced in at their row
        counts[short] = 1
        out = np.empty(int(counts.sum()), dtype=np.uint64)
        row = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        long_mask = np.ones(n_docs, dtype=bool)
        long_mask[short] = False
        long_pos = np.repeat(row[:-1][long_mask], counts[long_mask]) + _ranks(counts[long_mask])
        out[long_pos] = windows[valid]
        for d in short:
            s, e = offsets[d], offsets[d + 1]
            h = wh[s].copy()
            for j in range(s + 1, e):
                h = h * _M + wh[j]
            out[row[d]] = fmix64(np.array([h], dtype=np.uint64))[0]
        return out, row


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for each count c, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(total) - starts


def exact_keys(wh: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    """xxh3-128 of each document's normalised word-hash sequence (equal iff normalised texts are equal, w.h.p.)."""
    b = wh.tobytes()
    f = xxhash.xxh3_128_digest
    return [f(b[8 * int(offsets[i]) : 8 * int(offsets[i + 1])]) for i in range(len(offsets) - 1)]


def minhash_matrix(sh: np.ndarray, row_offsets: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash matrix from flat shingle hashes (rensa, Rust)."""
    import rensa

    n_docs = len(row_offsets) - 1
    if n_docs == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    m = rensa.RMinHash.digest_matrix_from_flat_token_hashes(sh, row_offsets.astype(np.uint64), num_perm, seed)
    return np.asarray(m.to_rows(), dtype=np.uint32).reshape(n_docs, num_perm)


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) int64: each band's r minima combined into one 64-bit key."""
    n = sig.shape[0]
    x = sig[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = np.full((n, bands), np.uint64(rows), dtype=np.uint64)
        for j in range(rows):
            h = h * _M + x[:, :, j]
        fmix64(h)
    return h.view(np.int64)


def signature_batch(texts: pa.Array, p: MinHashParams) -> dict[str, object]:
    """Everything dedup needs from one batch of texts (see module docstring)."""
    wh, offsets = word_hashes(texts, p.normalize)
    sh, rows = shingle_hashes(wh, offsets, p.ngram)
    sig = minhash_matrix(sh, rows, p.num_perm, p.seed)
    return {
        "exact_key": exact_keys(wh, offsets),
        "n_words": np.diff(offsets).astype(np.int32),
        "n_shingles": np.diff(rows).astype(np.int32),
        "signature": sig,
        "bands": band_hashes(sig, p.bands, p.rows),
    }


SIGNATURE_SCHEMA = pa.schema([
    ("doc_id", pa.string()),
    ("exact_key", pa.binary()),
    ("n_words", pa.int32()),
    ("n_shingles", pa.int32()),
    ("signature", pa.binary()),
    ("bands", pa.list_(pa.int64())),
])

SIGNATURE_DDL = ("doc_id string, exact_key binary, n_words int, n_shingles int, signature binary, "
                 "bands array<bigint>")


def signature_udf(p: MinHashParams, carry: Sequence[str] = ()):
    """A ``mapInArrow`` function: (doc_id, text, *carry) batches → ``SIGNATURE_SCHEMA`` batches followed by the
    ``carry`` columns unchanged (so that per-document metadata needs no join back to the input)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            out = signature_batch(batch.column("text"), p)
            sig = out["signature"]
            k = sig.shape[1]
            sig_bytes = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(4 * k), len(sig), [None, pa.py_buffer(np.ascontiguousarray(sig).tobytes())]
            ).cast(pa.binary())
            bands = out["bands"]
            nb = bands.shape[1]
            band_list = pa.ListArray.from_arrays(pa.array(np.arange(0, (len(bands) + 1) * nb, nb, dtype=np.int32)),
                                                 pa.array(bands.reshape(-1)))
            schema = SIGNATURE_SCHEMA
            for c in carry:
                schema = schema.append(batch.schema.field(c))
            yield pa.RecordBatch.from_arrays(
                [batch.column("doc_id"), pa.array(out["exact_key"], type=pa.binary()), pa.array(out["n_words"]),
                 pa.array(out["n_shingles"]), sig_bytes, band_list, *(batch.column(c) for c in carry)],
                schema=schema,
            )

    return run


def estimated_jaccard(sig_a: bytes, sig_b: bytes) -> float:
    """Fraction of equal MinHash values (unbiased estimate of the Jaccard similarity)."""
    a = np.frombuffer(sig_a, dtype=np.uint32)
    b = np.frombuffer(sig_b, dtype=np.uint32)
    return float(np.mean(a == b))
