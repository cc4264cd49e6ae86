"""Evaluation of semantic dedup on real text (``eval_semdedup``).

The same article extracted by two HTML extractors (resiliparse and trafilatura: boilerplate kept or cut, lists and
tables rendered differently) is a semantic duplicate even when its word 5-gram Jaccard is far below MinHash's 0.8.
Every page with both extractions of at least ``eval_min_words`` words gives one positive pair; every pair of
different pages is a negative. For each embedder and eps, the full semdedup transform runs on these documents
(embedding, centring, k-means, the within-cluster rule) and a pair counts as merged when both ends share a cluster
and their cosine is >= 1 - eps: the recall of same-page pairs per Jaccard bucket and the number of cross-page
merges. MinHash's row is what verification at Jaccard >= 0.8 can find at best. The evaluation set is small by
construction (a few hundred pages), so its vectors are compared on the driver.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from mixlake.text import normalize, word_shingles

JACCARD_BUCKETS = [("j_lt_0.5", 0.0, 0.5), ("j_0.5_0.8", 0.5, 0.8), ("j_ge_0.8", 0.8, 1.01)]
EXTRACTORS = ("resiliparse", "trafilatura")


def extractor_pairs(pages: list[tuple[str, bytes]], min_words: int,
                    extract: Callable[[bytes, str], str]) -> list[dict[str, Any]]:
    """One document per (page, extractor) for the pages whose both extractions have ``min_words`` words."""
    rows = []
    for name, html in pages:
        texts = {e: extract(html, e) for e in EXTRACTORS}
        if min(len(t.split()) for t in texts.values()) < min_words:
            continue
        page = os.path.basename(name)
        rows += [{"doc_id": f"{page}|{e}", "page": page, "source": e, "text": t, "n_chars": len(t)}
                 for e, t in texts.items()]
    return rows


def jaccard(a: str, b: str, n: int = 5) -> float:
    """Word n-gram Jaccard after dedup's normalisation (what MinHash estimates)."""
    sa, sb = word_shingles(normalize(a), n), word_shingles(normalize(b), n)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def pair_metrics(rows: list[dict[str, Any]], vectors: dict[str, tuple[str, np.ndarray]],
                 sweep: list[float]) -> list[dict[str, Any]]:
    """Per eps: recall of same-page pairs by Jaccard bucket and cross-page merges (see the module docstring).
    ``vectors``: doc_id -> (cluster, unit vector)."""
    pages = sorted({r["page"] for r in rows})
    text = {r["doc_id"]: r["text"] for r in rows}
    ids = [f"{p}|{e}" for p in pages for e in EXTRACTORS]
    x = np.stack([vectors[i][1] for i in ids]).astype(np.float64)
    cl = np.array([vectors[i][0] for i in ids])
    sims = np.round(x @ x.T, 6)
    same_cluster = cl[:, None] == cl[None, :]
    n = len(pages)
    pos_cos = np.array([sims[2 * p, 2 * p + 1] if same_cluster[2 * p, 2 * p + 1] else -np.inf for p in range(n)])
    jac = np.array([jaccard(text[ids[2 * p]], text[ids[2 * p + 1]]) for p in range(n)])
    page_of = np.repeat(np.arange(n), 2)
    cross = np.triu(page_of[:, None] != page_of[None, :], 1) & same_cluster
    out = []
    for eps in sweep:
        row: dict[str, Any] = {"eps": eps, "pages": n}
        for name, lo, hi in JACCARD_BUCKETS:
            in_bucket = (jac >= lo) & (jac < hi)
            row[f"pairs_{name}"] = int(in_bucket.sum())
            row[f"recall_{name}"] = round(float((pos_cos[in_bucket] >= 1 - eps).mean()), 4) if in_bucket.any() \
                else None
        row["cross_page_merges"] = int((sims[cross] >= 1 - eps).sum())
        out.append(row)
    return out


def minhash_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The pairs MinHash verification at Jaccard >= 0.8 can find, per bucket (by construction 0 below 0.8)."""
    by_page: dict[str, dict[str, str]] = {}
    for r in rows:
        by_page.setdefault(r["page"], {})[r["source"]] = r["text"]
    jac = np.array([jaccard(t["resiliparse"], t["trafilatura"]) for _, t in sorted(by_page.items())])
    row: dict[str, Any] = {"embedder": "minhash (J >= 0.8)", "eps": None, "pages": len(jac)}
    for name, lo, hi in JACCARD_BUCKETS:
        in_bucket = (jac >= lo) & (jac < hi)
        row[f"pairs_{name}"] = int(in_bucket.sum())
        row[f"recall_{name}"] = round(float((jac[in_bucket] >= 0.8).mean()), 4) if in_bucket.any() else None
    row["cross_page_merges"] = 0
    return row
