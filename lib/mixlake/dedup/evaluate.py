"""Scoring dedup against labelled duplicates.

Two gold formats, both keyed by the input records' own ids (``source_id``):

* the sample corpus's ``ground_truth.json`` (``exact_duplicates`` groups and ``near_duplicates``
  ``[id_a, id_b, jaccard, edit_rate]``), and
* a user file ``{"pairs": [[source_id_a, source_id_b, jaccard], ...]}`` (Jaccard of word 5-gram shingles, or any
  similarity in [0, 1] the user trusts).

Reported: pair recall for gold pairs at ``J >= threshold`` (and per Jaccard bucket), pair precision of the predicted
same-cluster pairs against the gold clusters (gold pairs closed transitively), and false merges: predicted
same-cluster pairs whose shingle Jaccard is below 0.5.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from mixlake.text import jaccard, normalize, word_shingles


def load_gold(path: str) -> list[tuple[str, str, float]]:
    """Gold pairs ``(source_id_a, source_id_b, jaccard)`` from either format (exact pairs get J = 1)."""
    with open(path) as f:
        data = json.load(f)
    pairs: list[tuple[str, str, float]] = []
    if "pairs" in data:
        for row in data["pairs"]:
            if len(row) < 3:
                raise ValueError(f"{path}: each pair must be [source_id_a, source_id_b, jaccard], got {row!r}")
            pairs.append((str(row[0]), str(row[1]), float(row[2])))
        return pairs
    if "exact_duplicates" not in data and "near_duplicates" not in data:
        raise ValueError(f"{path}: expected {{'pairs': [...]}} or a mixlake ground_truth.json")
    for group in data.get("exact_duplicates", []):
        pairs += [(a, b, 1.0) for a, b in itertools.combinations(group, 2)]
    pairs += [(a, b, float(j)) for a, b, j, *_ in data.get("near_duplicates", [])]
    return pairs


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def score(gold: list[tuple[str, str, float]], cluster_of: dict[str, str], texts: dict[str, str] | None = None,
          threshold: float = 0.8, max_pairs: int = 200_000) -> dict[str, Any]:
    """Metrics for predicted clusters (``cluster_of``: source_id → cluster id, duplicates only) against gold pairs.

    ``texts`` (source_id → text) lets false merges be measured on predicted pairs that are not gold pairs.
    """
    buckets = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.01)]
    by_bucket: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    hit_at, n_at = 0, 0
    uf = _UnionFind()
    gold_j: dict[tuple[str, str], float] = {}
    for a, b, j in gold:
        same = a in cluster_of and cluster_of.get(a) == cluster_of.get(b)
        lo, hi = next(x for x in buckets if x[0] <= j < x[1])
        key = f"{lo:.2f}-{min(hi, 1.0):.2f}"
        by_bucket[key][0] += int(same)
        by_bucket[key][1] += 1
        if j >= threshold:
            n_at += 1
            hit_at += int(same)
        gold_j[(min(a, b), max(a, b))] = j
        if j >= 0.5:
            uf.union(a, b)
    members: dict[str, list[str]] = defaultdict(list)
    for sid, c in cluster_of.items():
        members[c].append(sid)
    n_pred = n_correct = false_merges = unmeasured = 0
    for ids in members.values():
        for a, b in itertools.combinations(sorted(ids), 2):
            n_pred += 1
            if n_pred > max_pairs:
                break
            if uf.find(a) == uf.find(b):
                n_correct += 1
                continue
            j = gold_j.get((a, b))
            if j is None and texts is not None and a in texts and b in texts:
                j = jaccard(word_shingles(normalize(texts[a])), word_shingles(normalize(texts[b])))
            if j is None:
                unmeasured += 1
            elif j < 0.5:
                false_merges += 1
            else:
                n_correct += 1  # a true duplicate the gold file does not list
    recall = hit_at / n_at if n_at else None
    precision = n_correct / min(n_pred, max_pairs) if n_pred else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else None
    return {
        "threshold": threshold, "gold_pairs": len(gold), "gold_pairs_at_threshold": n_at,
        "recall_at_threshold": recall, "precision": precision, "f1": f1,
        "predicted_pairs": n_pred, "false_merges_below_0.5": false_merges, "unmeasured_pairs": unmeasured,
        "recall_by_jaccard": {k: {"found": v[0], "pairs": v[1], "recall": v[0] / v[1]}
                              for k, v in sorted(by_bucket.items())},
    }


def texts_for(rows: Iterable[Any]) -> dict[str, str]:
    return {r.source_id: r.text for r in rows}
