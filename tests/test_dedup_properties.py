"""Property tests (Hypothesis) of dedup's distributed algorithms against single-process oracles, on real Spark.

* connected components vs a union-find, on random graphs: paths and trees in random id order, stars, dense graphs,
  many components per run — and a single component per run (the shape that hid the early-stop bug);
* LSH candidate verification vs exact all-pairs-in-a-bucket, on random signatures with planted families.

Many small graphs are packed into one Spark run (disjoint id prefixes) so thousands of graphs cost a few dozen runs.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from mixlake.dedup.components import connected_components
from mixlake.dedup.dedup import lsh_buckets, signature_similarity, verified_candidates
from mixlake.dedup.evaluate import union_find
from mixlake.dedup.minhash import band_hashes

SETTINGS = settings(deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run_components(spark, edges: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    df = spark.createDataFrame(edges, "src string, dst string")
    cc = connected_components(df)
    return [(r.node, r.component) for r in cc.members.collect()], cc.rounds


def check_against_union_find(spark, edges: list[tuple[str, str]]) -> int:
    rows, rounds = run_components(spark, edges)
    nodes = {x for e in edges for x in e if e[0] != e[1]}
    got = dict(rows)
    assert len(rows) == len(got), "a node appears more than once in the output"
    assert got == union_find([e for e in edges if e[0] != e[1]], nodes)
    return rounds


@st.composite
def graph(draw, prefix: str = "") -> list[tuple[str, str]]:
    """One connected graph of a random shape whose node ids are in random order relative to its structure."""
    n = draw(st.integers(2, 24))
    ids = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    ids = [f"{prefix}{i:07d}" for i in ids]  # random labels: a path is rarely sorted
    shape = draw(st.sampled_from(["path", "tree", "star", "dense", "cycle"]))
    if shape == "path":
        edges = list(itertools.pairwise(ids))
    elif shape == "cycle":
        edges = list(zip(ids, ids[1:] + ids[:1], strict=False))
    elif shape == "star":
        c = draw(st.integers(0, n - 1))
        edges = [(ids[c], x) for x in ids if x != ids[c]]
    elif shape == "tree":
        edges = [(ids[i], ids[draw(st.integers(0, i - 1))]) for i in range(1, n)]
    else:
        edges = [(ids[i], ids[draw(st.integers(0, i - 1))]) for i in range(1, n)]
        extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
        edges += [(ids[a], ids[b]) for a, b in extra]
    flip = draw(st.lists(st.booleans(), min_size=len(edges), max_size=len(edges)))
    return [(b, a) if f else (a, b) for (a, b), f in zip(edges, flip, strict=True)]


def test_components_regression_two_parents(spark):
    """The minimal case where 'no edge's target is a source' stopped with node 2 under roots 0 and 1."""
    rows, _ = run_components(spark, [("2", "4"), ("0", "4"), ("3", "1"), ("2", "3")])
    assert sorted(rows) == [("0", "0"), ("1", "0"), ("2", "0"), ("3", "0"), ("4", "0")]


@settings(SETTINGS, max_examples=20)
@given(g=graph())
def test_components_single_component_per_run(spark, g):
    check_against_union_find(spark, g)


@settings(SETTINGS, max_examples=10)
@given(gs=st.integers(100, 160).flatmap(lambda k: st.tuples(*[graph(prefix=f"g{i:03d}-") for i in range(k)])))
def test_components_many_components_per_run(spark, gs):
    """~1,300 random graphs over the examples, packed into one run each (disjoint id prefixes)."""
    edges = [e for g in gs for e in g]
    random.Random(len(edges)).shuffle(edges)
    check_against_union_find(spark, edges)


def test_components_empty_and_self_loops(spark):
    assert run_components(spark, [])[0] == []
    assert run_components(spark, [("a", "a")])[0] == []


def test_components_rounds_on_a_long_path(spark):
    """A 2,000-node path in random id order: the fixed point is reached, every node once, in O(log² n) rounds."""
    rng = random.Random(8)
    ids = [f"{i:06d}" for i in rng.sample(range(10**6), 2000)]
    rounds = check_against_union_find(spark, list(itertools.pairwise(ids)))
    assert rounds <= 30


# ---------------------------------------------------------------- LSH verification


def family_signatures(rng: np.random.Generator, n_families: int, size: int, k: int, mutate: float,
                      alphabet: int) -> np.ndarray:
    """Families of signatures: each member copies its family's base and redraws each value with prob ``mutate``."""
    sigs = []
    for _ in range(n_families):
        base = rng.integers(0, alphabet, k, dtype=np.uint32)
        for _ in range(size):
            s = base.copy()
            m = rng.random(k) < mutate
            s[m] = rng.integers(0, alphabet, int(m.sum()), dtype=np.uint32)
            sigs.append(s)
    return np.array(sigs, dtype=np.uint32).reshape(len(sigs), k)


def oracle_pairs(sig: np.ndarray, ids: list[str], bands: int, rows: int, threshold: float) -> dict:
    """Every pair sharing a band bucket, with its estimated Jaccard and verdict."""
    bh = band_hashes(sig, bands, rows)
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in range(len(ids)):
        for b in range(bands):
            buckets[(b, int(bh[i, b]))].append(i)
    out = {}
    for members in buckets.values():
        for x in members:
            for y in members:
                if ids[x] > ids[y]:
                    j = float(np.mean(sig[x] == sig[y]))
                    out[(ids[x], ids[y])] = (j, j >= threshold)
    return out


def sig_frame(spark, sig: np.ndarray, ids: list[str], bands: int, rows: int):
    bh = band_hashes(sig, bands, rows)
    data = [(ids[i], "", sig[i].tobytes(), [int(x) for x in bh[i]]) for i in range(len(ids))]
    return spark.createDataFrame(data, "doc_id string, scope string, signature binary, bands array<bigint>")


def run_verification(spark, sig, ids, bands, rows, threshold, all_pairs_max, reroot_rounds):
    sigs = sig_frame(spark, sig, ids, bands, rows)
    c = verified_candidates(lsh_buckets(sigs), lambda p: signature_similarity(p, sigs), threshold,
                            all_pairs_max, reroot_rounds, lambda df, name: df.localCheckpoint())
    return {(r.src, r.dst): (r.jaccard, r.verified, r.scheme) for r in c.collect()}


@settings(SETTINGS, max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), n_families=st.integers(0, 12), size=st.integers(1, 8),
       mutate=st.floats(0.0, 0.5), alphabet=st.integers(2, 64))
def test_verification_equals_all_pairs_in_small_buckets(spark, seed, n_families, size, mutate, alphabet):
    """Buckets up to ``bucket_all_pairs_max``: exactly the all-pairs candidate set, every verdict as the oracle's."""
    rng = np.random.default_rng(seed)
    bands, rows, t = 6, 2, 0.6
    sig = family_signatures(rng, n_families, size, bands * rows, mutate, alphabet)
    order = rng.permutation(len(sig))
    ids = [f"d{int(x):05d}" for x in order]  # ids in random order relative to the families
    got = run_verification(spark, sig, ids, bands, rows, t, all_pairs_max=10**6, reroot_rounds=0)
    want = oracle_pairs(sig, ids, bands, rows, t)
    assert {k: (round(v[0], 9), v[1]) for k, v in got.items()} == {k: (round(v[0], 9), v[1]) for k, v in want.items()}


@settings(SETTINGS, max_examples=5)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(20, 120), mutate=st.floats(0.05, 0.4))
def test_verification_hot_buckets_are_sound_and_bounded(spark, seed, size, mutate):
    """Hot buckets (forced: ``bucket_all_pairs_max=2``): every verified pair is a true candidate pair at the
    threshold, re-rooting only adds verified pairs, and the pairs scored stay within (rounds + 1) per member."""
    rng = np.random.default_rng(seed)
    bands, rows, t = 4, 2, 0.7
    sig = family_signatures(rng, 1, size, bands * rows, mutate, 4)
    ids = [f"d{int(x):05d}" for x in rng.permutation(len(sig))]
    want = oracle_pairs(sig, ids, bands, rows, t)
    star = run_verification(spark, sig, ids, bands, rows, t, all_pairs_max=2, reroot_rounds=0)
    rerooted = run_verification(spark, sig, ids, bands, rows, t, all_pairs_max=2, reroot_rounds=3)
    for got in (star, rerooted):
        for k, (j, ok, _) in got.items():
            assert k in want and want[k][1] == ok and abs(want[k][0] - j) < 1e-9
    assert {k for k, v in star.items() if v[1]} <= {k for k, v in rerooted.items() if v[1]}
    assert len(rerooted) <= 4 * bands * len(ids)


def test_verification_empty_input(spark):
    sigs = spark.createDataFrame([], "doc_id string, scope string, signature binary, bands array<bigint>")
    c = verified_candidates(lsh_buckets(sigs), lambda p: signature_similarity(p, sigs), 0.8, 64, 3,
                            lambda df, name: df.localCheckpoint())
    assert c.count() == 0


def test_buckets_never_cross_scopes(spark):
    sig = np.zeros((4, 4), dtype=np.uint32)
    bh = band_hashes(sig, 2, 2)
    df = spark.createDataFrame([(f"d{i}", "ab"[i % 2], sig[i].tobytes(), [int(x) for x in bh[i]]) for i in range(4)],
                               "doc_id string, scope string, signature binary, bands array<bigint>")
    m = lsh_buckets(df).groupBy("bucket").agg(F.count("*").alias("n")).collect()
    assert sorted(r.n for r in m) == [2, 2, 2, 2]  # 2 scopes x 2 bands (scopes mixed: [4, 4])
