"""Decontamination (issue 15): matching and span removal against single-process oracles (Hypothesis), then the
stage on real Spark — both modes, the frequency guard, code contamination, clean/dirty eval files, determinism."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import compose, realdata
from mixlake.decontam.config import DecontamConfig
from mixlake.decontam.index import EvalItem, build_index, item_texts, words_with_spans
from mixlake.decontam.match import candidate_docs, doc_hits, hits_udf, remove_spans
from mixlake.text import NormalizeConfig, normalize

SETTINGS = settings(deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# letters, digits, punctuation, underscore, whitespace, CJK, Thai, combining marks, ligatures NFKC expands, emoji
ALPHABET = [*"abcAB09 .,;!?_-'\"\n\t", "東", "京", "ไทย", "é", "e\u0301", "ﬁ", "Ⅻ", "😀", "\u00a0", "İ"]


@SETTINGS
@given(st.lists(st.sampled_from(ALPHABET), max_size=60).map("".join), st.booleans())
def test_words_with_spans_are_the_normalised_words(text, strip):
    norm = NormalizeConfig(strip_punctuation=strip)
    words, starts, ends = words_with_spans(text, norm)
    assert words == normalize(text, norm).split()
    assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends, strict=True))
    assert starts == sorted(starts)


# --- matching: the vectorised prefilter + Python span pass against an oracle on word tuples ------------------------

VOCAB = ["alpha", "beta", "gamma", "delta", "Alpha", "BETA", "x1", "y2", "東", "京"]


def oracle_hits(docs: list[str], items: list[tuple[str, list[str]]], cfg: DecontamConfig) -> set[tuple]:
    """(doc, item, char_start, char_end) by comparing normalised word tuples directly (no hashing)."""
    grams: dict[int, dict[tuple[str, ...], set[int]]] = {}
    for i, (_, texts) in enumerate(items):
        for t in texts:
            w = normalize(t, cfg.normalize).split()
            n = min(cfg.ngram, len(w))
            if n < cfg.min_ngram:
                continue
            for k in range(len(w) - n + 1):
                grams.setdefault(n, {}).setdefault(tuple(w[k:k + n]), set()).add(i)
    out = set()
    for d, text in enumerate(docs):
        words, starts, ends = words_with_spans(text, cfg.normalize)
        for n, table in grams.items():
            for k in range(len(words) - n + 1):
                for i in table.get(tuple(words[k:k + n]), ()):
                    out.add((d, i, starts[k], ends[k + n - 1]))
    return out


def _text(rng: random.Random, n: int) -> str:
    seps = [" ", "  ", ", ", ". ", "\n", "-"]
    return "".join(rng.choice(VOCAB) + rng.choice(seps) for _ in range(n)).strip()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_docs=st.integers(0, 30), n_items=st.integers(1, 30),
       ngram=st.integers(2, 5), shape=st.sampled_from(["random", "planted", "hot", "short"]))
def test_hits_match_the_oracle(seed, n_docs, n_items, ngram, shape):
    rng = random.Random(seed)
    cfg = DecontamConfig(evals={}, ngram=ngram, min_ngram=max(1, ngram - 2))
    items = [(f"i{k}", [_text(rng, rng.randint(0, ngram + 4)), _text(rng, rng.randint(0, 3))])
             for k in range(n_items)]
    docs = []
    for _ in range(n_docs):
        if shape == "short":
            docs.append(_text(rng, rng.randint(0, ngram)))
            continue
        text = _text(rng, rng.randint(0, 40))
        if shape in ("planted", "hot") and items:
            plant = items[0 if shape == "hot" else rng.randrange(n_items)][1][0]
            cut = rng.randint(0, len(text))
            text = text[:cut] + " " + (plant.upper() if rng.random() < 0.5 else plant) + " " + text[cut:]
        docs.append(text)
    index = build_index([(EvalItem("t", name, {}, False), texts) for name, texts in items], cfg)
    expected = oracle_hits(docs, items, cfg)
    batch = pa.RecordBatch.from_pydict({"doc_id": [str(d) for d in range(len(docs))], "source": ["s"] * len(docs),
                                        "text": docs})
    got = set()
    for out in hits_udf(index, cfg.normalize)([batch]):
        for r in out.to_pylist():
            got.add((int(r["doc_id"]), r["item"], r["char_start"], r["char_end"]))
            assert r["ngram"] == docs[int(r["doc_id"])][r["char_start"]:r["char_end"]]
    assert got == expected
    # the prefilter never loses a document the exact pass finds
    flagged = set(candidate_docs(pa.array(docs, pa.string()), index, cfg.normalize).tolist())
    assert {d for d, *_ in expected} <= flagged
    assert all(not doc_hits(docs[d], index, cfg.normalize) for d in set(range(len(docs))) - flagged)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_keys=st.sampled_from([0, 1, 5, 63, 64, 500, 5000]))
def test_index_membership_matches_isin(seed, n_keys):
    """The bitmap + sorted-keys lookup (from 64 keys up; sorted keys alone below) against a Python set."""
    import numpy as np

    from mixlake.decontam.index import NgramIndex

    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 2**64 - 1, n_keys, dtype=np.uint64, endpoint=True))
    index = NgramIndex([], {13: keys}, {13: np.zeros(len(keys), dtype=np.int32)})
    probes = np.concatenate([rng.choice(keys, min(len(keys), 500)) if len(keys) else keys,
                             rng.integers(0, 2**64 - 1, 500, dtype=np.uint64, endpoint=True),
                             keys[:50] ^ np.uint64(1 << 40)])  # same low bits as a key: bitmap hits, not members
    members = set(keys.tolist())
    assert index.contains(13, probes).tolist() == [int(p) in members for p in probes.tolist()]


# --- span removal against a character-mask oracle ------------------------------------------------------------------

def oracle_remove(text, spans, margin, min_frag, max_splits):
    mask = [False] * len(text)
    for s, e in spans:
        for k in range(max(0, s - margin), min(len(text), e + margin)):
            mask[k] = True
    runs, pieces, cur, prev = 0, [], [], None
    for k, m in enumerate(mask):
        if m and prev is not True:
            runs += 1
            pieces.append("".join(cur))
            cur = []
        if not m:
            cur.append(text[k])
        prev = m
    pieces.append("".join(cur))
    if runs > max_splits:
        return None, runs
    kept = [p.strip() for p in pieces if len(p.strip()) >= max(1, min_frag)]
    return ("\n\n".join(kept) if kept else None), runs


@SETTINGS
@given(text=st.text(st.sampled_from("ab \n."), max_size=120), data=st.data(), margin=st.integers(0, 6),
       min_frag=st.integers(0, 10), max_splits=st.integers(1, 5))
def test_remove_spans_matches_the_oracle(text, data, margin, min_frag, max_splits):
    n = len(text)
    span = st.tuples(st.integers(0, n), st.integers(0, n)).map(sorted).filter(lambda t: t[0] < t[1])
    spans = data.draw(st.lists(span, min_size=1, max_size=8)) if n else []
    if not spans:
        return
    new, action, regions, _ = remove_spans(text, spans, margin, min_frag, max_splits)
    assert (new, regions) == oracle_remove(text, spans, margin, min_frag, max_splits)
    if new is not None:
        assert action == "spans_removed"
    else:
        assert action == ("dropped_too_many_splits" if regions > max_splits else "dropped_no_fragment_left")


def test_remove_spans_gpt3_rules():
    text = "A" * 400 + " " + "match here" + " " + "B" * 150 + " tail"
    s = text.index("match")
    # 200 characters cut on each side of the match; what is left after it is inside the cut
    assert remove_spans(text, [(s, s + 10)], 200, 200, 10) == ("A" * 201, "spans_removed", 1, len(text) - 201)
    # the 201 characters before the match are too short a fragment at min_fragment_chars=300: nothing is left
    assert remove_spans(text, [(s, s + 10)], 200, 300, 10)[:2] == (None, "dropped_no_fragment_left")
    spans = [(k * 500, k * 500 + 5) for k in range(12)]
    assert remove_spans("x" * 6000, spans, 10, 10, 10)[1] == "dropped_too_many_splits"
    assert remove_spans("short text with a match", [(18, 23)], 200, 200, 10)[1] == "dropped_no_fragment_left"


def test_item_texts_joins_fields():
    rec = {"question": "What is two plus two?", "answer": "Four.", "other": "x"}
    assert item_texts(rec, ["question", "answer"], True) == ["What is two plus two?", "Four.",
                                                            "What is two plus two? Four."]
    assert item_texts(rec, ["question", "answer"], False) == ["What is two plus two?", "Four."]
    assert item_texts({"question": "q"}, ["question", "answer"], True) == ["q"]


# --- the stage on Spark ----------------------------------------------------------------------------------------------

_LETTERS = "bcdfghjklmnpqrstvwxz"
_r = random.Random(99)
WORDS = sorted({"".join(_r.choice(_LETTERS) + _r.choice("aeiou") for _ in range(_r.randint(2, 4)))
                 for _ in range(4000)})


def _para(rng: random.Random, n: int) -> str:  # letters only: digits normalise to 0
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small corpus with eval items planted verbatim, re-cased, as near misses and into 12 docs (common)."""
    rng = random.Random(15)
    d = tmp_path_factory.mktemp("decontam")
    items = [{"qid": f"q{k}", "question": _para(rng, 30), "answer": _para(rng, 12)} for k in range(8)]
    docs = [{"id": f"d{k:03d}", "text": "\n\n".join(_para(rng, 60) for _ in range(4))} for k in range(60)]
    plants = {}

    def plant(doc: int, text: str, kind: str) -> None:
        paras = docs[doc]["text"].split("\n\n")
        paras.insert(2, text)
        docs[doc]["text"] = "\n\n".join(paras)
        plants.setdefault(docs[doc]["id"], []).append(kind)

    plant(0, items[0]["question"] + " " + items[0]["answer"], "verbatim")
    plant(1, items[1]["question"].upper().replace(" ", " , "), "recased")
    plant(2, items[2]["question"], "question_only")
    q3 = items[3]["question"].rstrip(".").split()
    plant(3, " ".join("CHANGED" if k % 12 == 11 else w for k, w in enumerate(q3)), "near_miss")  # 11-word runs
    for k in range(10, 22):  # item 4's answer in 12 documents: more than max_train_frequency=10
        plant(k, items[4]["answer"], "common")
    plant(5, items[5]["question"], "q5")
    plant(5, items[6]["question"], "q6")  # two matches in one document
    (d / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    (d / "eval.jsonl").write_text("".join(json.dumps(x) + "\n" for x in items))
    return d, items, docs, plants


def _cfg(corpus_dir, lake, *extra):
    return compose(f"lake={lake}", "sample.enabled=false", "stages=[ingest,decontam]",
                   f"+sources.c.path={corpus_dir}/corpus.jsonl", "+sources.c.format=jsonl",
                   f"+decontam.evals.toy.path={corpus_dir}/eval.jsonl", "+decontam.evals.toy.id_field=qid",
                   "decontam.min_fragment_chars=50", *extra)


def _read(spark, lake, name):
    return spark.read.format("delta").load(f"{lake}/tables/{name}")


def test_remove_spans_mode_on_spark(spark, corpus, tmp_path):
    from mixlake.pipeline import run_pipeline

    d, items, docs, plants = corpus
    lake = tmp_path / "lake"
    res = run_pipeline(spark, _cfg(d, lake))[-1]
    out = {r.source_id: r.text for r in _read(spark, lake, "documents_decontaminated").collect()}
    orig = {x["id"]: x["text"] for x in docs}
    # every planted (non-common, non-near-miss) item's text is gone from its document; clean documents untouched
    for doc_id, kinds in plants.items():
        if set(kinds) <= {"near_miss", "common"}:
            assert out[doc_id] == orig[doc_id], doc_id
        else:
            assert out[doc_id] != orig[doc_id]
    for doc_id in set(orig) - set(plants):
        assert out[doc_id] == orig[doc_id]
    assert items[0]["question"][:40] not in out["d000"] and len(out["d000"]) < len(orig["d000"])
    cont = _read(spark, lake, "contamination").collect()
    assert {r.item_id for r in cont if r.action != "ignored_common"} == {"q0", "q1", "q2", "q5", "q6"}
    assert {r.item_id for r in cont if r.action == "ignored_common"} == {"q4"}
    assert all(r.train_docs == 12 for r in cont if r.action == "ignored_common")
    # what the stage says against what its tables hold
    assert res.records_in == len(docs) == res.records_out + res.dropped
    assert res.records_out == _read(spark, lake, "documents_decontaminated").count()
    counts = {r.task: r for r in _read(spark, lake, "decontam_counts").collect()}
    assert counts["toy"].items == 8 and counts["toy"].items_contaminated == 5
    # the eval set, split exactly in two, in file order, as read
    clean = [json.loads(x) for x in (lake / "eval_clean" / "toy.jsonl").read_text().splitlines()]
    dirty = [json.loads(x) for x in (lake / "eval_clean" / "toy.dirty.jsonl").read_text().splitlines()]
    assert [x["qid"] for x in dirty] == ["q0", "q1", "q2", "q5", "q6"]
    assert [x["qid"] for x in clean] == ["q3", "q4", "q7"]
    assert clean + dirty != items and sorted(clean + dirty, key=lambda x: x["qid"]) == items
    # determinism: a rerun writes the same rows
    first = sorted(map(str, _read(spark, lake, "documents_decontaminated").collect()))
    run_pipeline(spark, _cfg(d, lake, "force=true"))
    assert sorted(map(str, _read(spark, lake, "documents_decontaminated").collect())) == first


def test_drop_document_mode_and_frequency_guard(spark, corpus, tmp_path):
    from mixlake.pipeline import run_pipeline

    d, _, docs, plants = corpus
    lake = tmp_path / "lake"
    res = run_pipeline(spark, _cfg(d, lake, "decontam.mode=drop_document", "decontam.max_train_frequency=20"))[-1]
    kept = {r.source_id for r in _read(spark, lake, "documents_decontaminated").collect()}
    hit = {doc for doc, kinds in plants.items() if set(kinds) != {"near_miss"}}  # 'common' counts now
    assert kept == {x["id"] for x in docs} - hit
    assert res.dropped == len(hit) == res.details["dropped"]["dropped_contaminated"]


def test_real_eval_sets_and_code_contamination(spark, tmp_path):
    """GSM8K and HumanEval as shipped (real files); HumanEval prompts planted into code documents."""
    import gzip

    from mixlake.pipeline import run_pipeline

    he = [json.loads(x) for x in gzip.decompress((realdata("eval") / "humaneval" / "HumanEval.jsonl.gz")
                                                  .read_bytes()).decode().splitlines()]
    gsm = [json.loads(x) for x in (realdata("eval") / "gsm8k" / "test.jsonl").read_text().splitlines()]
    rng = random.Random(3)
    code = [{"id": f"c{k}", "text": f"def helper_{k}(x):\n    return x * {k}\n\n" * 20} for k in range(30)]
    for k, p in enumerate([he[7], he[42], he[99]]):
        code[k]["text"] = code[k]["text"] + "\n" + p["prompt"] + p["canonical_solution"] + "\n" + "# end\n" * 60
    web = [{"id": f"w{k}", "text": _para(rng, 200)} for k in range(30)]
    web[0]["text"] = gsm[10]["question"] + "\n\n" + web[0]["text"]
    (tmp_path / "code.jsonl").write_text("".join(json.dumps(x) + "\n" for x in code))
    (tmp_path / "web.jsonl").write_text("".join(json.dumps(x) + "\n" for x in web))
    lake = tmp_path / "lake"
    cfg = compose(f"lake={lake}", "sample.enabled=false", "stages=[ingest,decontam]",
                  f"+sources.code.path={tmp_path}/code.jsonl", "+sources.code.format=jsonl",
                  f"+sources.web.path={tmp_path}/web.jsonl", "+sources.web.format=jsonl",
                  f"+decontam.evals.gsm8k.path={realdata('eval')}/gsm8k/test.jsonl",
                  f"+decontam.evals.humaneval.path={realdata('eval')}/humaneval/HumanEval.jsonl.gz",
                  "+decontam.evals.humaneval.fields=[prompt,canonical_solution]",
                  "+decontam.evals.humaneval.id_field=task_id", "decontam.min_fragment_chars=20")
    res = run_pipeline(spark, cfg)[-1]
    counts = {r.task: r for r in _read(spark, lake, "decontam_counts").collect()}
    assert (counts["gsm8k"].items, counts["humaneval"].items) == (1319, 164)
    dirty_he = [json.loads(x)["task_id"] for x in (lake / "eval_clean" / "humaneval.dirty.jsonl").read_text()
                .splitlines()]
    clean_he = (lake / "eval_clean" / "humaneval.jsonl").read_text().splitlines()
    assert len(dirty_he) + len(clean_he) == 164
    planted = {he[7]["task_id"], he[42]["task_id"], he[99]["task_id"]}
    # HumanEval's items share code (filter_by_substring and filter_by_prefix differ in a few words): planting one
    # contaminates its near twins too — every hit must come from the three planted code documents
    assert planted <= set(dirty_he) and len(dirty_he) <= 10
    cont = _read(spark, lake, "contamination").filter("task = 'humaneval' AND action != 'ignored_common'")
    docs_hit = {r.doc_id for r in cont.select("doc_id").distinct().collect()}
    planted_docs = {r.doc_id for r in _read(spark, lake, "documents").filter("source_id IN ('c0', 'c1', 'c2')")
                    .collect()}
    assert docs_hit == planted_docs
    dirty_gsm = (lake / "eval_clean" / "gsm8k.dirty.jsonl").read_text().splitlines()
    assert [json.loads(x)["question"] for x in dirty_gsm] == [gsm[10]["question"]]
    assert len((lake / "eval_clean" / "gsm8k.jsonl").read_text().splitlines()) == 1318
    assert res.details["index"]["ngrams"] > 100_000


def test_planted_sample_recall_and_no_false_hits(spark, sample_dir, ground_truth, tmp_path):
    """The sample's planted eval items through the default cleaning stages: verbatim, re-cased/re-punctuated,
    question-only and code plants are all found; near misses (runs of n-1 matching words) and unplanted items are
    not; no document without a plant is touched."""
    from conftest import SAMPLE_ARGS
    from mixlake.pipeline import run_pipeline

    lake = tmp_path / "lake"
    res = run_pipeline(spark, compose(*SAMPLE_ARGS, f"sample.dir={sample_dir}", f"lake={lake}",
                                      "stages=[ingest,quality,dedup,spans,decontam]"))[-1]
    plants = ground_truth["contamination"]
    dirty = {json.loads(x)["id"] for x in (lake / "eval_clean" / "sample_eval.dirty.jsonl").read_text().splitlines()}
    clean = {json.loads(x)["id"] for x in (lake / "eval_clean" / "sample_eval.jsonl").read_text().splitlines()}
    must = {p["id"] for p in plants if p["kind"] in ("verbatim", "recased", "question_only", "code")}
    must_not = {p["id"] for p in plants if p["kind"] in ("near_miss", "unplanted")}
    assert must and must_not and dirty == must and clean == must_not
    cont = _read(spark, lake, "contamination").collect()
    planted_docs = {tuple(d) for p in plants for d in p["docs"] if p["kind"] in ("verbatim", "recased",
                                                                                  "question_only", "code")}
    docs = {r.doc_id: (r.source, r.source_id) for r in _read(spark, lake, "documents").collect()}
    assert {docs[r.doc_id] for r in cont} == planted_docs  # every hit is a plant, every plant is hit
    before = {r.doc_id: r.text for r in _read(spark, lake, "documents_clean").collect()}
    after = {r.doc_id: r.text for r in _read(spark, lake, "documents_decontaminated").collect()}
    changed = {d for d in before if after.get(d) != before[d]}
    assert {docs[d] for d in changed} == planted_docs
    assert res.records_in == len(before) and res.records_out == len(after)
