"""Dedup on shapes the LSH star used to miss, scored against exact all-pairs Jaccard computed in Python:
template families in hot buckets, and near-duplicates in scripts written without spaces (real Chinese web text)."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter

import pytest

from conftest import realdata
from mixlake.config import SourceConfig
from mixlake.dedup.config import DedupConfig
from mixlake.dedup.dedup import deduplicate
from mixlake.dedup.evaluate import union_find
from mixlake.ingest.readers import read_records
from mixlake.text import jaccard, normalize, word_shingles

VOCAB = [f"t{i}w" for i in range(5000)]


def docs_frame(spark, texts: list[tuple[str, str, str]]):
    return spark.createDataFrame([(d, s, t, len(t)) for d, s, t in texts],
                                 "doc_id string, source string, text string, n_chars int")


def all_pairs(texts: dict[str, str]) -> dict[tuple[str, str], float]:
    sh = {d: word_shingles(normalize(t)) for d, t in texts.items()}
    return {(a, b): jaccard(sh[a], sh[b]) for a, b in itertools.combinations(sorted(texts), 2)}


def union_find_clusters(ids: list[str], pairs: dict[tuple[str, str], float], t: float) -> dict[str, str]:
    """Clusters (two or more members) of the exact all-pairs graph at threshold t."""
    comp = union_find([k for k, j in pairs.items() if j >= t], ids)
    sizes = Counter(comp.values())
    return {d: c for d, c in comp.items() if sizes[c] > 1}


def pair_recall(cluster_of: dict[str, str], pairs: dict[tuple[str, str], float], t: float) -> float:
    true = [(a, b) for (a, b), j in pairs.items() if j >= t]
    return sum(a in cluster_of and cluster_of.get(a) == cluster_of.get(b) for a, b in true) / len(true)


def template_family(rng: random.Random, n: int) -> dict[str, str]:
    """n pages sharing a 600-word template, each with its own words in 6–14 slots (pairwise J ~0.75–0.9); the
    smallest doc_id is a heavily edited page dissimilar to the rest (J ~0.5), the bucket root of the old star."""
    template = [rng.choice(VOCAB) for _ in range(600)]
    pages = {}
    for i in range(n):
        words = list(template)
        k = 60 if i == 0 else rng.randint(6, 14)
        for pos in rng.sample(range(len(words)), k):
            words[pos] = f"page{i}slot{pos}"
        pages[f"f{i:04d}"] = " ".join(words)
    return pages


@pytest.fixture(scope="module")
def family(spark):
    texts = template_family(random.Random(12), 240)
    return texts, all_pairs(texts)


def test_template_family_recall_star_vs_rerooted(spark, family):
    texts, pairs = family
    df = docs_frame(spark, [(d, "web", t) for d, t in texts.items()])
    t = 0.8
    old = deduplicate(df, DedupConfig(bucket_all_pairs_max=1, reroot_rounds=0), {})
    new = deduplicate(df, DedupConfig(), {})
    old_c = {r.doc_id: r.cluster_id for r in old.duplicates.collect()}
    new_c = {r.doc_id: r.cluster_id for r in new.duplicates.collect()}
    r_old, r_new = pair_recall(old_c, pairs, t), pair_recall(new_c, pairs, t)
    print(f"template family: true pairs {sum(j >= t for j in pairs.values())}, recall star {r_old:.3f}, "
          f"star + re-rooting {r_new:.3f}, candidates {old.candidates.count()} -> {new.candidates.count()}")
    assert r_new > r_old
    # with re-rooting the clusters are exactly the components of the exact all-pairs graph at the threshold
    assert new_c == union_find_clusters(sorted(texts), pairs, t)


def chinese_texts() -> list[str]:
    """Chunks of ~400 characters of real Chinese pages (Common Crawl excerpt, extracted by resiliparse)."""
    d = realdata("warc/resiliparse")
    src = SourceConfig(name="cc", path="x", format="warc")
    out = []
    for r in read_records(str(d / "warcfile.warc"), "warcfile.warc", src, 4096):
        if r.kind != "doc" or len(re.findall(r"[\u4e00-\u9fff]", r.text)) < 300:
            continue
        body = re.sub(r"\s+", "", r.text)
        out += [body[i:i + 400] for i in range(0, len(body) - 399, 400)]
    return out


def edit_chars(text: str, rate: float, rng: random.Random, pool: str) -> str:
    chars = list(text)
    for i in rng.sample(range(len(chars)), max(1, int(rate * len(chars)))):
        chars[i] = rng.choice(pool)
    return "".join(chars)


def test_cjk_near_duplicates_found_on_character_shingles(spark):
    rng = random.Random(3)
    chunks = chinese_texts()
    assert len(chunks) >= 12
    pool = "".join(sorted({c for t in chunks for c in t if "\u4e00" <= c <= "\u9fff"}))
    texts: dict[str, str] = {}
    rates = [0.005, 0.01, 0.02, 0.03, 0.05, 0.10]
    for i, c in enumerate(chunks):
        texts[f"zh{i:03d}a"] = c
        texts[f"zh{i:03d}b"] = edit_chars(c, rates[i % len(rates)], rng, pool)
    # a mixed-language corpus: English pages and their near-duplicates, and pages mixing both scripts
    for i in range(10):
        en = " ".join(rng.choice(VOCAB) for _ in range(150))
        texts[f"en{i:03d}a"] = en
        texts[f"en{i:03d}b"] = en.replace(en.split()[7], "changed", 1)
        texts[f"mx{i:03d}a"] = en[:300] + chunks[i][:200]
    pairs = all_pairs(texts)
    t = 0.8
    res = deduplicate(docs_frame(spark, [(d, "web", x) for d, x in texts.items()]), DedupConfig(), {})
    got = {r.doc_id: r.cluster_id for r in res.duplicates.collect()}
    want = union_find_clusters(sorted(texts), pairs, t)
    zh = {k: j for k, j in pairs.items() if k[0].startswith("zh") and k[0][:5] == k[1][:5]}
    recall = pair_recall(got, {k: 1.0 for k, j in zh.items() if j >= t}, t)
    # before: whitespace "words" made a whole chunk one token, so no two edited chunks shared a shingle
    old_j = [jaccard(set(texts[a].split()), set(texts[b].split())) for a, b in zh]
    print(f"CJK near-duplicate pairs: {len(zh)}, at J >= {t}: {sum(j >= t for j in zh.values())}, recall {recall}; "
          f"word-shingle Jaccard before: max {max(old_j):.2f}")
    assert recall == 1.0 and max(old_j) == 0.0
    assert got == want
