"""Eval items → a hashed n-gram index (built once on the driver, broadcast to the executors).

Words are the dedup normalisation's words (:func:`mixlake.text.normalize`: punctuation → space, unspaced scripts
per character, NFKC, lowercase, digits → 0) hashed with xxh3-64, and an n-gram's hash is the same polynomial of its
word hashes finalised with fmix64 that MinHash shingling uses (:func:`mixlake.dedup.minhash.shingle_hashes`), so
the corpus side reuses dedup's vectorised hot path. An eval text of at least ``ngram`` words contributes its
``ngram``-grams; a shorter one (down to ``min_ngram`` words) is matched as a whole, i.e. by its own length; a text
shorter than that cannot be checked and is reported as such.

The index is an exact set: per n, a sorted ``uint64`` array of n-gram hashes with the item each belongs to — a
GSM8K + HumanEval suite is ~0.3 M n-grams (a few MB). A false hit needs a 64-bit hash collision. Beside it, the
*prefilter* holds every ``m``-gram of every indexed text, ``m`` the smallest n in the index: an n-gram match starts
with one of them, so one ``m``-gram pass over a batch finds every document that can match, whatever mix of sizes
the eval texts need.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xxhash

from mixlake import storage
from mixlake.decontam.config import DecontamConfig, EvalSetConfig
from mixlake.dedup.minhash import _M, fmix64
from mixlake.errors import ConfigError
from mixlake.storage import S3Config
from mixlake.text import UNSPACED_RANGES, NormalizeConfig, normalize_word

_UNSPACED_CLASS = "[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in UNSPACED_RANGES) + "]"
# a word of the normalisation: one unspaced-script character, or a run of letters/digits (no "_") outside those
_WORD = re.compile(f"{_UNSPACED_CLASS}|(?:(?!{_UNSPACED_CLASS})[^\\W_])+")
_NONSPACE = re.compile(f"{_UNSPACED_CLASS}|(?:(?!{_UNSPACED_CLASS})\\S)+")


def words_with_spans(text: str, norm: NormalizeConfig) -> tuple[list[str], list[int], list[int]]:
    """(normalised words, start and end character offsets of each in ``text``): the same words, in the same order,
    as ``normalize(text, norm).split()``."""
    pattern = _WORD if norm.strip_punctuation else _NONSPACE
    words, starts, ends = [], [], []
    for m in pattern.finditer(text):
        for w in normalize_word(m.group(), norm).split():  # NFKC may turn one character into several words
            words.append(w)
            starts.append(m.start())
            ends.append(m.end())
    return words, starts, ends


def word_hash_array(words: list[str]) -> np.ndarray:
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(w.encode()) for w in words), dtype=np.uint64, count=len(words))


def ngram_hashes(wh: np.ndarray, n: int) -> np.ndarray:
    """Hashes of every n-gram of one word-hash sequence (as :func:`mixlake.dedup.minhash.shingle_hashes`)."""
    if len(wh) < n:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        windows = wh[: len(wh) - n + 1].copy()
        for j in range(1, n):
            windows = windows * _M + wh[j: len(wh) - n + 1 + j]
        return fmix64(windows)


@dataclass
class EvalItem:
    task: str
    item_id: str
    record: dict[str, Any]  # the item as read (written back to eval_clean/<task>.jsonl or .dirty.jsonl)
    checked: bool  # at least one of its texts has >= min_ngram words


@dataclass
class NgramIndex:
    """Per n: sorted n-gram hashes and, aligned, the index of the item each comes from (one row per pair)."""

    items: list[EvalItem]
    keys: dict[int, np.ndarray] = field(default_factory=dict)
    item_of: dict[int, np.ndarray] = field(default_factory=dict)
    prefilter: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # sorted unique m-grams
    _bitmaps: dict[int, tuple[np.ndarray, np.uint64]] = field(default_factory=dict, repr=False)

    def contains(self, n: int, hashes: np.ndarray) -> np.ndarray:
        """Whether each hash is an indexed n-gram (``n = 0``: a prefilter m-gram): a bitmap on the low bits (~1/64
        full) answers most with one gather; only its hits are checked exactly against the sorted keys."""
        keys = self.prefilter if n == 0 else self.keys[n]
        if len(keys) == 0:
            return np.zeros(len(hashes), dtype=bool)
        if len(keys) < 64:  # a sorted-keys lookup (numpy 2.1's isin gave varying answers on uint64 hashes here)
            pos = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
            return keys[pos] == hashes
        if n not in self._bitmaps:  # built where it is used (each executor), never shipped
            bits = min(26, max(12, int(np.ceil(np.log2(len(keys) * 64)))))
            mask = np.uint64((1 << bits) - 1)
            bitmap = np.zeros(1 << bits, dtype=bool)
            bitmap[(keys & mask).astype(np.int64)] = True
            self._bitmaps[n] = (bitmap, mask)
        bitmap, mask = self._bitmaps[n]
        cand = np.flatnonzero(bitmap[(hashes & mask).astype(np.int64)])
        out = np.zeros(len(hashes), dtype=bool)
        if len(cand):
            sub = hashes[cand]
            pos = np.minimum(np.searchsorted(keys, sub), len(keys) - 1)
            out[cand] = keys[pos] == sub
        return out

    @property
    def sizes(self) -> list[int]:
        return sorted(self.keys)

    @property
    def prefilter_n(self) -> int:
        """``m``: the n-gram size of the prefilter (the smallest size indexed)."""
        return self.sizes[0] if self.keys else 0

    def n_ngrams(self) -> int:
        return sum(len(k) for k in self.keys.values())

    def nbytes(self) -> int:
        return sum(k.nbytes + self.item_of[n].nbytes for n, k in self.keys.items())

    def lookup(self, n: int, hashes: np.ndarray) -> list[np.ndarray]:
        """For each hash, the (sorted, unique) item indices that contain it as an n-gram."""
        keys, items = self.keys[n], self.item_of[n]
        lo = np.searchsorted(keys, hashes, side="left")
        hi = np.searchsorted(keys, hashes, side="right")
        return [np.unique(items[a:b]) for a, b in zip(lo, hi, strict=True)]


def item_texts(record: dict[str, Any], fields: list[str], joined: bool) -> list[str]:
    texts = [str(record[f]) for f in fields if record.get(f) not in (None, "")]
    if joined and len(texts) > 1:
        texts.append(" ".join(texts))
    return texts


def build_index(items_with_texts: list[tuple[EvalItem, list[str]]], cfg: DecontamConfig) -> NgramIndex:
    """The index of every item's texts (see module docstring)."""
    per_n: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    word_seqs: list[np.ndarray] = []
    items = []
    for i, (item, texts) in enumerate(items_with_texts):
        checked = False
        for t in texts:
            wh = word_hash_array(words_with_spans(t, cfg.normalize)[0])
            n = min(cfg.ngram, len(wh))
            if n < cfg.min_ngram:
                continue
            checked = True
            word_seqs.append(wh)
            h = np.unique(ngram_hashes(wh, n))
            ks, vs = per_n.setdefault(n, ([], []))
            ks.append(h)
            vs.append(np.full(len(h), i, dtype=np.int32))
        item.checked = checked
        items.append(item)
    index = NgramIndex(items)
    for n, (ks, vs) in per_n.items():
        k = np.concatenate(ks)
        v = np.concatenate(vs)
        order = np.lexsort((v, k))
        index.keys[n], index.item_of[n] = k[order], v[order]
    if index.keys:
        m = index.prefilter_n
        index.prefilter = np.unique(np.concatenate([ngram_hashes(wh, m) for wh in word_seqs]))
    return index


def read_eval_set(es: EvalSetConfig, s3: S3Config | None = None) -> list[dict[str, Any]]:
    """The eval set's records, in file order (the driver reads it: eval sets are small)."""
    try:
        data = storage.read_bytes(es.path, s3)
    except FileNotFoundError as e:
        raise ConfigError(f"decontam.evals.{es.name}.path: no such file {es.path!r}") from e
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if es.format == "jsonl":
        rows = []
        for lineno, line in enumerate(data.decode("utf-8-sig").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise ConfigError(f"decontam.evals.{es.name}: {es.path} line {lineno} is not JSON: {e}") from e
    elif es.format == "csv":
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    missing = [f for f in es.fields if rows and all(f not in r for r in rows)]
    if missing:
        raise ConfigError(f"decontam.evals.{es.name}.fields: {missing} not in {es.path} "
                          f"(it has {sorted(rows[0]) if rows else []})")
    if es.id_field and rows and any(es.id_field not in r for r in rows):
        raise ConfigError(f"decontam.evals.{es.name}.id_field: {es.id_field!r} missing in some rows of {es.path}")
    return rows


def load_index(cfg: DecontamConfig, s3: S3Config | None = None) -> NgramIndex:
    """Read every configured eval set and build one index over all of them."""
    pairs: list[tuple[EvalItem, list[str]]] = []
    for es in cfg.eval_sets():
        seen: set[str] = set()
        for row_no, rec in enumerate(read_eval_set(es, s3)):
            item_id = str(rec[es.id_field]) if es.id_field else str(row_no)
            if item_id in seen:
                raise ConfigError(f"decontam.evals.{es.name}.id_field: id {item_id!r} repeats in {es.path}")
            seen.add(item_id)
            pairs.append((EvalItem(es.name, item_id, rec, False), item_texts(rec, es.fields, cfg.joined)))
    return build_index(pairs, cfg)


