"""Offline language identification, loaded once per Python worker.

Default ``lingua`` (lingua-language-detector: Rust, n-gram models inside the wheel; accurate on short and mixed
text); ``langid`` (langid.py, Lui & Baldwin 2012, model inside the package) selectable. ``bench/langid_bench.py``
measures both on real pages labelled by their ``<html lang>``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from functools import lru_cache
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

LANGID_CHUNK = 256  # documents per feature walk and matrix product


@lru_cache(maxsize=2)
def _lingua() -> Any:
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()


@lru_cache(maxsize=2)
def _langid() -> Any:
    from langid.langid import LanguageIdentifier, model

    return LanguageIdentifier.from_modelstring(model, norm_probs=True)


def detect_languages(texts: list[str], backend: str = "lingua", max_chars: int = 2000) -> list[tuple[str, float]]:
    """(ISO 639-1 code or ``und``, confidence in [0, 1]) per text; only the first ``max_chars`` are looked at."""
    clipped = [(t or "")[:max_chars] for t in texts]
    if backend == "langid":
        return _langid_batch(clipped)
    if backend != "lingua":
        raise ValueError(f"unknown language-id backend {backend!r}")
    det = _lingua()
    results = det.compute_language_confidence_values_in_parallel(clipped) \
        if hasattr(det, "compute_language_confidence_values_in_parallel") else \
        [det.compute_language_confidence_values(t) for t in clipped]
    out = []
    for t, conf in zip(clipped, results, strict=True):
        if not t.strip() or not conf:
            out.append(("und", 0.0))
            continue
        best = conf[0]
        out.append((best.language.iso_code_639_1.name.lower(), float(best.value)))
    return out


def _langid_batch(texts: list[str]) -> list[tuple[str, float]]:
    """``langid.classify`` for many texts at once, bit for bit: the same feature counts as langid's
    ``instance2fv`` (:func:`langid_features`), then one float64 matrix product per chunk and langid's log-sum-exp
    normalisation on the whole chunk. langid computes ``np.dot(uint32 features, float32 weights)`` one document at a
    time, which NumPy runs outside BLAS (mixed dtypes): 66% of its time. Tested equal to ``classify`` (language and
    probability) on random and sample texts."""
    arrays = _langid_arrays()
    weights, prior, classes = arrays["weights"], arrays["prior"], arrays["classes"].tolist()
    out: list[tuple[str, float]] = [("und", 0.0)] * len(texts)
    todo = [i for i, t in enumerate(texts) if t.strip()]
    for s in range(0, len(todo), LANGID_CHUNK):
        rows = todo[s:s + LANGID_CHUNK]
        features = langid_features([texts[i] for i in rows])
        log_probs = features.astype(np.float64) @ weights + prior
        best, prob = _most_probable(log_probs)
        for k, i in enumerate(rows):
            out[i] = (str(classes[best[k]]), float(prob[k]))
    return out


# classes this far below the best log-probability cannot win: only rounding ties classes, and only near-equal ones
CANDIDATE_MARGIN = 6.0


def _most_probable(log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, langid's ``norm_probs`` argmax and its probability, computed for the classes that can win only.

    langid normalises every class: ``p_c = 1 / sum_j exp(lp_j - lp_c)`` (a (classes x classes) matrix per document,
    half of the batch's time) and takes the first largest. Exactly, ``sum_j exp(lp_j - lp_c) = exp(lp_max - lp_c) *
    sum_j exp(lp_j - lp_max)``: a class below the best has the larger sum, so only rounding can make it tie or win,
    and only when it is within a few ulps. So only the classes within ``CANDIDATE_MARGIN`` of the best are normalised,
    each by the same row sum langid computes (same terms, same order: the same bits). Tested against the full
    normalisation (near-ties, exact ties, overflow) and against ``classify``.
    """
    top = log_probs.max(1)
    rows, classes = np.nonzero(log_probs >= (top - CANDIDATE_MARGIN)[:, None])
    with np.errstate(over="ignore"):  # as langid: exp overflow to inf only drives 1/x to 0
        probs = 1 / np.exp(log_probs[rows] - log_probs[rows, classes][:, None]).sum(1)
    order = np.lexsort((classes, -probs, rows))  # per row: the largest first, then the smallest class (argmax's tie)
    first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
    return classes[first], probs[first]


# what the cached model arrays hold; a change here must change LANGID_CACHE_FORMAT
LANGID_CACHE_FORMAT = "1: nextmove, emits (CSR), weights, prior, classes"


def _model_arrays() -> dict[str, np.ndarray]:
    """langid's model as the arrays the batch path uses: the tokenizer DFA's transition table (``state << 8 | byte``
    → state), the (state x feature) matrix of the features each state emits as CSR arrays (a feature listed twice
    for a state counts twice, as in ``instance2fv``), the class weights and priors, and the class names."""
    import scipy.sparse as sp

    ident = _langid()
    nextmove = np.asarray(ident.tk_nextmove, dtype=np.int32)
    n_states = len(nextmove) // 256
    pairs = [(state, f) for state, feats in ident.tk_output.items() for f in feats]
    states, feats = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
    emits = sp.csr_matrix((np.ones(len(pairs), np.int64), (states, feats)), shape=(n_states, ident.nb_numfeats))
    emits.sum_duplicates()
    return {"nextmove": nextmove, "emits_data": emits.data, "emits_indices": emits.indices,
            "emits_indptr": emits.indptr, "emits_shape": np.array(emits.shape, np.int64),
            "weights": ident.nb_ptc.astype(np.float64), "prior": np.asarray(ident.nb_pc),
            "classes": np.array([str(c) for c in ident.nb_classes])}


@lru_cache(maxsize=1)
def _langid_arrays() -> dict[str, np.ndarray]:
    """:func:`_model_arrays`, cached as an ``.npz`` file in the temporary directory under the sha256 of langid's
    packed model (and of ``LANGID_CACHE_FORMAT``): langid unpacks its model (base64, bz2, pickle, then NumPy) in
    ~1.9 s, once in every Python worker that identifies a language; the cached arrays load in ~10 ms. The file is
    written under a unique name and renamed into place, so workers racing to write it never read half a file; the
    arrays are the same bits either way (tests)."""
    from langid.langid import model

    key = hashlib.sha256(model if isinstance(model, bytes) else model.encode())
    key.update(LANGID_CACHE_FORMAT.encode())
    path = os.path.join(tempfile.gettempdir(), f"mixlake-langid-{key.hexdigest()[:20]}.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        pass
    arrays = _model_arrays()
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.npz"
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as e:  # a read-only or full temp dir costs the unpacking in every worker, nothing else
        log.warning("langid: cannot cache the model arrays at %s (%s); each worker unpacks the model", path, e)
        if os.path.exists(tmp):
            os.remove(tmp)
    return arrays


@lru_cache(maxsize=1)
def _langid_tables() -> tuple[np.ndarray, Any]:
    """langid's tokenizer DFA as arrays: the transition table and the sparse state → feature matrix."""
    import scipy.sparse as sp

    a = _langid_arrays()
    shape = tuple(int(x) for x in a["emits_shape"])
    return a["nextmove"], sp.csr_matrix((a["emits_data"], a["emits_indices"], a["emits_indptr"]), shape=shape)


def langid_features(texts: list[str]) -> np.ndarray:
    """langid's ``instance2fv`` for many texts at once: ``(len(texts), nb_numfeats)`` uint32, equal to stacking
    ``instance2fv(t)`` (tested).

    ``instance2fv`` walks the tokenizer DFA over a text's UTF-8 bytes in a Python loop (one dict update per byte) and
    then adds each visited state's emitted features times its visit count. Here all texts walk the DFA in lockstep:
    one NumPy gather per byte position for every text still that long (texts sorted by length, so those are a
    prefix), the visited states kept as a sparse (text x state) matrix, and the features are that matrix times the
    sparse state → feature matrix — integer arithmetic throughout, so the counts are exact.
    3.5x ``instance2fv`` on 4,096 sample documents clipped to 2,000 characters (one process); the COO count instead
    of ``np.unique``: 0.60 → 0.49 s on 4,096 scale-20 documents; the visits read off the walk as CSR rows, unsummed:
    1.48 → 0.78 s on 10,240 scale-20 web documents."""
    import pyarrow as pa
    import scipy.sparse as sp

    nextmove, emits = _langid_tables()
    n_states = emits.shape[0]
    n = len(texts)
    arr = pa.array(texts, pa.string())
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + n + 1].astype(np.int64)
    data = np.frombuffer(arr.buffers()[2], np.uint8) if arr.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    lens = lengths[order]
    width = int(lens[0]) if n else 0
    valid = np.arange(width)[None, :] < lens[:, None]  # (text, byte position) inside the text
    text_bytes = np.zeros((n, width), np.int32)
    text_bytes[valid] = data[(offsets[:-1][order][:, None] + np.arange(width)[None, :])[valid]]
    visited = np.zeros((n, width), np.int32)
    state = np.zeros(n, np.int32)
    active = np.searchsorted(-lens, -np.arange(1, width + 1), side="right")  # texts longer than each position
    for pos in range(width):
        k = active[pos]
        state[:k] = nextmove[(state[:k] << 8) + text_bytes[:k, pos]]
        visited[:k, pos] = state[:k]
    # the visits as a CSR matrix read off the walk (row i: text i's visited states, in byte order), its repeated
    # (text, state) entries left unsummed: the sparse product adds every entry of a row, so a state visited k times
    # contributes k times, as in instance2fv. Summing them first (COO -> CSR sorts each row) was 40% of this
    # function's time
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=indptr[1:])
    visits = sp.csr_matrix((np.ones(int(indptr[-1]), np.int64), visited[valid], indptr), shape=(n, n_states))
    out = np.empty((n, emits.shape[1]), np.uint32)
    out[order] = (visits @ emits).toarray()
    return out
