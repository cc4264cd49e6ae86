"""Semantic dedup (issue 17): the within-cluster rule and the cluster split against single-process oracles
(Hypothesis), then the stage on real Spark — paraphrases MinHash cannot see found, the keep rule, determinism,
embedding reuse, accounting against the tables, the eps sweep — and the evaluation on real pages."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import compose, realdata
from mixlake.semdedup.config import SemDedupConfig
from mixlake.semdedup.semdedup import COSINE_DECIMALS, cluster_members, earlier_neighbours, eps_bucket

SETTINGS = settings(deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def unit_rows(rng: np.random.Generator, m: int, dim: int, distinct: int) -> np.ndarray:
    """``m`` unit vectors drawn from ``distinct`` directions plus small noise: many ties and near-ties."""
    base = rng.standard_normal((max(distinct, 1), dim))
    noise = rng.choice([0.0, 0.05], size=(m, 1)) * rng.standard_normal((m, dim))
    x = base[rng.integers(0, max(distinct, 1), m)] + noise
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1
    return x / n


def oracle_neighbours(x: np.ndarray, allowed: np.ndarray | None) -> tuple[list[float], list[int]]:
    best, arg = [], []
    for j in range(len(x)):
        b, a = -math.inf, -1
        for i in range(j):
            if allowed is not None and not allowed[i]:
                continue
            s = round(float(np.dot(x[i], x[j])), COSINE_DECIMALS)
            if s > b:
                b, a = s, i
        best.append(b)
        arg.append(a)
    return best, arg


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(1, 6), st.integers(1, 9), st.integers(0, 5),
       st.booleans())
def test_earlier_neighbours_match_the_oracle(seed, m, dim, block, distinct, masked):
    rng = np.random.default_rng(seed)
    x = unit_rows(rng, m, dim, distinct)
    allowed = rng.random(m) < 0.6 if masked else None
    best, arg = earlier_neighbours(x, block, allowed)
    ob, oa = oracle_neighbours(x, allowed)
    assert list(best) == pytest.approx(ob, abs=2e-6)
    for j in range(m):  # the same partner, or one exactly as similar (float rounding may order near-ties)
        if oa[j] >= 0:
            assert arg[j] >= 0 and abs(round(float(np.dot(x[arg[j]], x[j])), 6) - ob[j]) <= 2e-6
        else:
            assert arg[j] == -1


def oracle_cluster(members: list[dict], eps: float, sweep: list[float]) -> dict[str, dict]:
    """SemDeDup on one cluster, written plainly: keep order, best earlier cosine, removal, kept neighbour."""
    order = sorted(members, key=lambda r: (r["_prio"], -r["_quality"], -r["n_chars"], r["doc_id"]))
    vec = [np.asarray(r["vec"], dtype=np.float64) for r in order]
    out: dict[str, dict] = {}
    removed = []
    for j, r in enumerate(order):
        sims = [round(float(np.dot(vec[i], vec[j])), COSINE_DECIMALS) for i in range(j)]
        best = max(sims) if sims else None
        removed.append(best is not None and best >= 1 - eps)
        bucket = min((e for e in sweep if best is not None and best >= 1 - e), default=None)
        out[r["doc_id"]] = {"rank": j, "cosine": best, "removed": removed[-1], "eps_bucket": bucket,
                            "nearest": order[int(np.argmax(sims))]["doc_id"] if sims else None}
    for j, r in enumerate(order):
        if removed[j]:
            kept = [(round(float(np.dot(vec[i], vec[j])), COSINE_DECIMALS), i) for i in range(j) if not removed[i]]
            out[r["doc_id"]]["kept_cosine"] = max(kept)[0]
    return out


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(0, 4), st.sampled_from([0.01, 0.05, 0.1, 0.3]),
       st.integers(1, 8))
def test_cluster_rule_matches_the_oracle(seed, m, distinct, eps, block):
    rng = np.random.default_rng(seed)
    x = unit_rows(rng, m, 4, distinct)
    ids = [f"d{int(v):03d}" for v in rng.permutation(m)]  # doc ids in random order: the keep rule must sort
    members = [{"doc_id": ids[i], "source": "s", "cluster": "7", "_prio": int(rng.integers(0, 3)),
                "_quality": float(rng.choice([-1.0, 0.2, 0.9])), "n_chars": int(rng.integers(1, 4)),
                "vec": x[i].astype(np.float32).tolist()} for i in range(m)]
    sweep = sorted({0.01, 0.05, 0.1, eps})
    # the UDF sees float32 vectors (as stored); so does the oracle
    for r in members:
        r["vec"] = np.asarray(r["vec"], dtype=np.float32).astype(np.float64)
    got = cluster_members(pd.DataFrame(members), eps, sweep, block).set_index("doc_id")
    want = oracle_cluster(members, eps, sweep)
    assert sorted(got.index) == sorted(want)
    for doc_id, w in want.items():
        g = got.loc[doc_id]
        assert g["rank"] == w["rank"] and bool(g["removed"]) == w["removed"], doc_id
        assert g["cluster_size"] == m
        if w["cosine"] is None:
            assert np.isnan(g["cosine"]) and g["nearest_doc_id"] is None
        else:
            assert g["cosine"] == pytest.approx(w["cosine"], abs=2e-6)
        assert (np.isnan(g["eps_bucket"]) if w["eps_bucket"] is None else g["eps_bucket"] == w["eps_bucket"])
        if w["removed"]:
            assert g["kept_cosine"] == pytest.approx(w["kept_cosine"], abs=2e-6)
            assert not bool(got.loc[g["kept_doc_id"], "removed"])
            assert got.loc[g["kept_doc_id"], "rank"] < g["rank"]


def test_eps_bucket_is_the_smallest_removing_eps():
    cos = np.array([0.999, 0.995, 0.97, 0.5, -np.inf])
    assert eps_bucket(cos, [0.005, 0.01, 0.05, 0.1]).tolist()[:3] == [0.005, 0.005, 0.05]
    assert np.isnan(eps_bucket(cos, [0.005, 0.01, 0.05, 0.1])[3:]).all()


def test_config_errors_name_the_key():
    from mixlake.errors import ConfigError

    with pytest.raises(ConfigError, match=r"semdedup\.embedder"):
        compose("semdedup.embedder=bert")
    with pytest.raises(ConfigError, match=r"semdedup\.eps"):
        compose("semdedup.eps=0")
    with pytest.raises(ConfigError, match=r"semdedup\.eval_embedders"):
        compose("semdedup.eval_embedders=[wordllama,glove]")


def test_downstream_stages_read_semdeduped():
    from mixlake.stages.inputs import cleaned_input

    cfg = compose("stages=[ingest,quality,dedup,semdedup,spans,tokens]")
    assert cleaned_input(cfg, stage="semdedup") == "deduped"
    assert cleaned_input(cfg, stage="spans") == "semdeduped"
    assert cleaned_input(cfg, stage="tokens") == "documents_clean"


# --- the split of oversized clusters, on Spark, against its invariants ----------------------------------------------


@settings(max_examples=6, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(0, 120), st.integers(0, 4), st.integers(3, 25))
def test_split_bounds_every_cluster_and_only_refines(spark, seed, n, distinct, bound):
    """Random vectors (``distinct`` = 0..4 directions: identical vectors no plane separates, forcing the cut),
    one k-means cluster: afterwards every document is in exactly one cluster, no cluster exceeds the bound, and
    each new cluster lies inside its old one."""
    from mixlake.semdedup.cluster import split_oversized

    rng = np.random.default_rng(seed)
    x = unit_rows(rng, n, 6, distinct) if distinct else unit_rows(rng, n, 6, n or 1)
    rows = [(f"d{i:04d}", "0", x[i].astype(np.float32).tolist()) for i in range(n)]
    df = spark.createDataFrame(rows, "doc_id string, cluster string, vec array<float>")
    cfg = SemDedupConfig(max_cluster_size=bound, split_rounds=3, seed=seed % 1000)
    out, stats = split_oversized(df, cfg, lambda d, name: d.localCheckpoint())
    got = {r.doc_id: r.cluster for r in out.collect()}
    assert sorted(got) == [r[0] for r in rows]
    sizes: dict[str, int] = {}
    for c in got.values():
        sizes[c] = sizes.get(c, 0) + 1
        assert c == "0" or c.startswith("0.") or c.startswith("0#")
    assert max(sizes.values(), default=0) <= bound
    assert stats.largest_before == (n if n > bound else 0)
    if n <= bound:
        assert set(got.values()) <= {"0"} and stats.rounds == 0


# --- the stage on Spark --------------------------------------------------------------------------------------------


def _vocab() -> list[str]:
    from mixlake.semdedup.embed import wordllama_model

    _, tok = wordllama_model()
    return sorted(w[1:] for w in tok.get_vocab()
                  if w.startswith("\u2581") and w[1:].isalpha() and w[1:].islower() and len(w) >= 5)


def _render(sents: list[list[str]]) -> str:
    return " ".join(" ".join(s).capitalize() + "." for s in sents)


@pytest.fixture(scope="module")
def paraphrase_corpus(tmp_path_factory):
    """Two sources of unrelated documents (random real words), with planted paraphrases — 3% of words replaced and
    the sentences reordered: word 5-gram Jaccard < 0.8, so MinHash at 0.8 misses them — in the same source (the
    longer text, then the smaller doc_id is kept) and across sources (the wiki copy is kept: priority 10 < 50)."""
    from mixlake.semdedup.evaluate import jaccard

    rng = random.Random(17)
    vocab = _vocab()
    d = tmp_path_factory.mktemp("semdedup")
    base = [[[rng.choice(vocab) for _ in range(rng.randint(8, 14))] for _ in range(8)] for _ in range(90)]
    web = [{"id": f"w{k:03d}", "text": _render(s)} for k, s in enumerate(base[:70])]
    wiki = [{"id": f"k{k:03d}", "text": _render(s)} for k, s in enumerate(base[70:])]
    planted = {}  # removed source_id -> kept source_id

    def para(sents):
        out = [[w if rng.random() > 0.03 else rng.choice(vocab) for w in s] for s in sents]
        rng.shuffle(out)
        return out

    for k in range(10):  # web paraphrases of web docs 0..9
        web.append({"id": f"wp{k}", "text": _render(para(base[k]))})
    for k in range(8):  # wiki paraphrases of web docs 20..27: the wiki copy wins
        wiki.append({"id": f"kp{k}", "text": _render(para(base[20 + k]))})
        planted[f"w{20 + k:03d}"] = f"kp{k}"
    texts = {x["id"]: x["text"] for x in web + wiki}
    for k in range(10):  # within web: the longer text is kept, then the smaller doc_id (checked in the test)
        planted[f"wp{k}"] = f"w{k:03d}"
    assert max(jaccard(texts[a], texts[b]) for a, b in planted.items()) < 0.8
    (d / "web.jsonl").write_text("".join(json.dumps(x) + "\n" for x in web))
    (d / "wiki.jsonl").write_text("".join(json.dumps(x) + "\n" for x in wiki))
    return d, texts, planted


def _stage_cfg(d, lake, *extra):
    return compose(f"lake={lake}", "sample.enabled=false", "stages=[ingest,semdedup]",
                   f"+sources.web.path={d}/web.jsonl", "+sources.web.format=jsonl", "+sources.web.priority=50",
                   f"+sources.wiki.path={d}/wiki.jsonl", "+sources.wiki.format=jsonl", "+sources.wiki.priority=10",
                   "semdedup.docs_per_cluster=40", *extra)


def _read(spark, lake, name):
    return spark.read.format("delta").load(f"{lake}/tables/{name}")


def test_stage_finds_paraphrases_minhash_misses_keeps_the_preferred_copy_and_reruns_identically(
        spark, paraphrase_corpus, tmp_path):
    from mixlake.stages import ingest, semdedup

    d, texts, planted = paraphrase_corpus
    lake = tmp_path / "lake"
    # one cluster: the SemDeDup rule sees every pair (k-means may separate a pair; the next test covers that path)
    cfg = _stage_cfg(d, lake, "semdedup.k=1")
    ingest.run(spark, cfg)
    res = semdedup.run(spark, cfg)
    sid = {r.doc_id: r.source_id for r in _read(spark, lake, "documents").collect()}
    dups = _read(spark, lake, "semantic_duplicates").collect()
    removed = {sid[r.doc_id]: r for r in dups if r.removed}
    doc_of = {v: k for k, v in sid.items()}

    def keep_key(x: str) -> tuple:  # the keep rule: source priority, longer text, smaller doc_id
        return (10 if x.startswith("k") else 50, -len(texts[x]), doc_of[x])

    # every planted paraphrase pair: exactly the member the keep rule ranks second removed, reported against the other
    for pair in planted.items():
        kept, gone = sorted(pair, key=keep_key)
        assert gone in removed, f"{gone} (paraphrase of {kept}) not removed"
        assert sid[removed[gone].kept_doc_id] == kept and removed[gone].cosine >= 0.9
    assert all(sorted(p, key=keep_key)[0].startswith("k") for p in planted.items() if p[1].startswith("k"))
    assert len(removed) == len(planted)  # nothing unrelated removed
    # the stage's numbers against its tables
    out = _read(spark, lake, "semdeduped")
    n_in = _read(spark, lake, "documents").count()
    assert res.records_in == n_in == len(texts)
    assert res.records_out == out.count() == n_in - len(removed)
    assert res.dropped == len(removed)
    assert {sid[r.doc_id] for r in out.collect()} == set(texts) - set(removed)
    sweep = {r.eps: r.docs_removed for r in _read(spark, lake, "semdedup_sweep").orderBy("eps").collect()}
    assert sweep[0.1] == len(removed)
    for eps, n in sweep.items():  # the sweep counts what the duplicates table holds
        assert n == sum(1 for r in dups if r.cosine is not None and r.cosine >= 1 - eps)
    assert list(sweep.values()) == sorted(sweep.values())
    clusters = _read(spark, lake, "semdedup_clusters").collect()
    assert sum(r.size for r in clusters) == n_in and res.details["k"] == 1
    # determinism: a forced rerun writes the same rows; it reuses every embedding
    first = {t: sorted(map(str, _read(spark, lake, t).collect()))
             for t in ("semantic_duplicates", "semdeduped", "semdedup_clusters", "semdedup_sweep")}
    again = semdedup.run(spark, cfg)
    assert again.details["embedded"] == 0 and again.details["reused"] == n_in
    for t, rows in first.items():
        assert sorted(map(str, _read(spark, lake, t).collect())) == rows, t


def test_kmeans_clusters_and_oversized_clusters_reuse_the_embeddings(
        spark, paraphrase_corpus, tmp_path):
    from mixlake.pipeline import run_pipeline
    from mixlake.stages import semdedup

    d, texts, planted = paraphrase_corpus
    lake = tmp_path / "lake"
    # k-means with k = ceil(108 / 40) = 3: pairs k-means keeps together are found, nothing unrelated is removed.
    # Through the pipeline: its bookkeeping (inputs, outputs, fingerprint) knows the stage
    first = run_pipeline(spark, _stage_cfg(d, lake))[-1]
    assert first.stage == "semdedup"
    runs = {r.stage: r for r in spark.read.format("delta").load(f"{lake}/tables/runs").collect()}
    assert runs["semdedup"].status == "succeeded" and set(runs["semdedup"].input_versions) == {"documents"}
    assert set(runs["semdedup"].output_versions) == {"semdeduped", "semantic_duplicates", "semdedup_sweep",
                                                     "semdedup_clusters"}
    again = run_pipeline(spark, _stage_cfg(d, lake))
    assert [bool(r.details.get("skipped")) for r in again] == [True, True]  # nothing changed: both skipped
    assert first.details["k"] == math.ceil(len(texts) / 40) and first.details["embedded"] == len(texts)
    sid = {r.doc_id: r.source_id for r in _read(spark, lake, "documents").collect()}
    removed = {sid[r.doc_id] for r in _read(spark, lake, "semantic_duplicates").collect() if r.removed}
    in_pairs = set(planted) | set(planted.values())
    assert removed <= in_pairs and len(removed) >= 0.75 * len(planted)
    assert sum(r.size for r in _read(spark, lake, "semdedup_clusters").collect()) == len(texts)
    # other clustering settings on the same lake: no embedding is computed again; one cluster of 108 > 30 is split
    second = semdedup.run(spark, _stage_cfg(d, lake, "semdedup.k=1", "semdedup.max_cluster_size=30"))
    assert second.details["embedded"] == 0
    clusters = _read(spark, lake, "semdedup_clusters").collect()
    assert second.details["split"]["clusters_split"] >= 1 and second.details["split"]["largest_before"] == len(texts)
    assert max(r.size for r in clusters) <= 30 and all(r.cluster.startswith("0") for r in clusters)


def test_embeddings_are_reused_by_document_and_text(spark, tmp_path):
    """``semdedup_embeddings`` is keyed by doc_id, text hash and embedder: an unchanged document is never embedded
    again, a changed or new one is, a removed one leaves the table."""
    from mixlake.semdedup.embed import embed
    from mixlake.stages.semdedup import cached_embeddings

    cfg = compose(f"lake={tmp_path / 'lake'}", "sample.enabled=false", "semdedup.embedder=wordllama")
    rows = [(f"d{i}", f"document number {i} about {w} and more {w}") for i, w in enumerate(["cats", "ships", "tea"])]
    persist = lambda df, name: df.localCheckpoint()  # noqa: E731
    ddl = "doc_id string, text string"
    emb, stats = cached_embeddings(spark, cfg, spark.createDataFrame(rows, ddl), "k1", persist)
    assert stats["embedded"] == 3 and emb.count() == 3
    changed = [rows[0], (rows[1][0], rows[1][1] + " changed"), ("d9", "a new one")]
    emb, stats = cached_embeddings(spark, cfg, spark.createDataFrame(changed, ddl), "k1", persist)
    assert stats["embedded"] == 2
    got = {r.doc_id: r.embedding for r in emb.collect()}
    assert sorted(got) == ["d0", "d1", "d9"]
    want = {r.doc_id: r.embedding for r in embed(spark.createDataFrame(changed, ddl), cfg.semdedup).collect()}
    assert got == want  # the reused vector is the one embedding it again would give
    table = spark.read.format("delta").load(str(tmp_path / "lake" / "tables" / "semdedup_embeddings"))
    assert sorted(r.doc_id for r in table.collect()) == ["d0", "d1", "d9"]
    _, stats = cached_embeddings(spark, cfg, spark.createDataFrame(changed, ddl), "k2", persist)
    assert stats["embedded"] == 3  # another embedder key: nothing reusable


def test_empty_input_and_documents_without_tokens(spark):
    """No documents: no rows and no error (MLlib's IDF and Summarizer refuse empty inputs). Documents without a token
    keep the zero vector even after centring: never clustered, never anyone's duplicate — two empty texts included."""
    from mixlake.semdedup.embed import embed
    from mixlake.semdedup.semdedup import semantic_dedup

    cfg = compose("sample.enabled=false", "semdedup.k=5").semdedup  # lsa: fitted (IDF, PCA) and centred
    ddl = "doc_id string, source string, text string, n_chars long"
    empty = spark.createDataFrame([], ddl)
    assert semantic_dedup(empty, embed(empty, cfg), cfg, {}).members.count() == 0
    docs = spark.createDataFrame([("a", "s", "", 0), ("b", "s", "", 0), ("c", "s", "tea and ships", 13),
                                  ("d", "s", "tea and ships", 13)], ddl)
    got = {r.doc_id: r for r in semantic_dedup(docs, embed(docs, cfg), cfg, {}).members.collect()}
    assert sorted(got) == ["a", "b", "c", "d"]
    assert got["a"].cluster == got["b"].cluster == "-" and not got["a"].removed and not got["b"].removed
    assert got["d"].removed and got["d"].kept_doc_id == "c" and got["d"].cosine == 1.0


def test_eval_semdedup_on_real_pages(spark, tmp_path):
    """Same article, two extractors (resiliparse, trafilatura): the embedders find pairs MinHash cannot
    (Jaccard < 0.8) and merge no two different pages at the default eps."""
    from mixlake.stages import eval_semdedup

    pages = realdata("html/trafilatura")
    cfg = compose(f"lake={tmp_path / 'lake'}", "sample.enabled=false", f"semdedup.eval_pages={pages}/*.html",
                  "semdedup.eval_embedders=[wordllama,lsa]")
    res = eval_semdedup.run(spark, cfg)
    rows = {(r["embedder"], r["eps"]): r for r in res.details["rows"]}
    mh = rows[("minhash (J >= 0.8)", None)]
    assert mh["recall_j_lt_0.5"] == 0 and mh["recall_j_0.5_0.8"] == 0 and mh["recall_j_ge_0.8"] == 1
    assert mh["pages"] >= 100
    for name in ("wordllama", "lsa"):
        default = rows[(name, cfg.semdedup.eps)]
        assert default["cross_page_merges"] == 0, name
        assert default["recall_j_0.5_0.8"] > 0.3 and default["recall_j_ge_0.8"] > 0.9, name
    # lsa, the default embedder, was chosen for recall at zero merges (and speed): the evaluation must keep showing it
    lsa, wl = rows[("lsa", cfg.semdedup.eps)], rows[("wordllama", cfg.semdedup.eps)]
    assert lsa["recall_j_0.5_0.8"] >= wl["recall_j_0.5_0.8"]
    # a larger eps finds more and eventually merges different pages: the sweep shows the trade-off
    assert rows[("lsa", 0.005)]["recall_j_ge_0.8"] < lsa["recall_j_ge_0.8"]
    table = _read(spark, tmp_path / "lake", "semdedup_eval").collect()
    assert len(table) == len(res.details["rows"])
    saved = json.loads((tmp_path / "lake" / "report" / "semdedup_eval.json").read_text())
    assert saved["rows"] == res.details["rows"]
