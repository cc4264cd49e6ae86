"""Learned quality (issue 16): GPT-3's HashingTF + logistic regression classifier on real Spark — training,
persistence, the selection modes, per-source application, counts in quality_counts, the keep rule's score."""

from __future__ import annotations

import json
import os
import random

import pytest
from pyspark.sql import functions as F

from conftest import compose
from mixlake.quality.model import apply_selection
from mixlake.quality.model_config import QualityModelConfig
from mixlake.stages import quality

_r = random.Random(16)
_SYL = ["ka", "to", "ri", "mon", "sel", "va", "dor", "en", "li", "qua", "ber", "ti", "no", "ran", "su", "pel"]
COMMON = sorted({"".join(_r.choice(_SYL) for _ in range(3)) for _ in range(400)})
CURATED = sorted({"".join(_r.choice(_SYL) for _ in range(4)) for _ in range(300)} - set(COMMON))
SPAM = ["click", "buy", "cheap", "free", "casino", "offer", "deal", "win", "bonus", "viagra", "login", "cookie"]


def _doc(rng: random.Random, curated: bool, n: int = 120) -> str:
    special = CURATED if curated else SPAM
    words = [rng.choice(special) if rng.random() < 0.25 else rng.choice(COMMON) for _ in range(n)]
    sents = [" ".join(words[i:i + 12]).capitalize() + "." for i in range(0, n, 12)]
    return " ".join(sents)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    rng = random.Random(7)
    d = tmp_path_factory.mktemp("qm")
    for name, curated, n in (("wiki", True, 300), ("books", True, 100), ("web", False, 400), ("news", False, 150)):
        rows = [{"id": f"{name}{k}", "text": _doc(rng, curated if rng.random() < 0.95 else not curated)}
                for k in range(n)]
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def _cfg(d, lake, *extra):
    srcs = [x for name in ("wiki", "books", "web", "news")
            for x in (f"+sources.{name}.path={d}/{name}.jsonl", f"+sources.{name}.format=jsonl")]
    return compose(f"lake={lake}", "sample.enabled=false", "stages=[ingest,quality]", "quality=none", *srcs,
                   "quality_model.enabled=true", "quality_model.negative_sources=[web]", *extra)


def _q(spark, lake):
    return spark.read.format("delta").load(f"{lake}/tables/quality")


def test_train_persist_reload_and_select(spark, toy, tmp_path):
    from mixlake.pipeline import run_pipeline

    lake = tmp_path / "lake"
    res = run_pipeline(spark, _cfg(toy, lake))[-1]
    m = res.details["quality_model"]
    assert m["auc"] > 0.8 and os.path.isdir(os.path.join(m["path"], "model"))
    with open(os.path.join(m["path"], "config.json")) as f:
        assert set(json.load(f)) >= {"num_features", "seed"}
    # the table names the model relative to the lake (the same table wherever the lake lives)
    stored = spark.read.format("delta").load(f"{lake}/tables/quality_model").first()
    assert stored.path == os.path.relpath(m["path"], lake) == json.loads(stored.metrics)["path"]
    q = _q(spark, lake)
    scored = {r.doc_id: r for r in q.filter(F.col("quality_model_score").isNotNull()).collect()}
    # applied to the negative sources by default: web scored and selected, the others untouched
    assert {r.source for r in scored.values()} == {"web"}
    by_source = {r.source: r for r in q.groupBy("source").agg(
        F.sum((~F.col("keep")).cast("int")).alias("dropped"),
        F.sum(F.array_contains("drop_reasons", "quality_model").cast("int")).alias("by_model")).collect()}
    assert by_source["wiki"].dropped == by_source["news"].dropped == 0
    assert by_source["web"].by_model == by_source["web"].dropped > 0
    counts = {(r.source, r.rule): r.dropped for r in
              spark.read.format("delta").load(f"{lake}/tables/quality_counts").collect()}
    assert counts[("web", "quality_model")] == by_source["web"].by_model
    # the keep rule's quality_score is the model's score where there is one
    assert all(r.quality_score == r.quality_model_score for r in scored.values())
    # Pareto: spam-heavy web documents mostly dropped, curated-looking ones mostly kept (GPT-3's alpha=9)
    kept = [r.quality_model_score for r in scored.values() if r.keep]
    dropped = [r.quality_model_score for r in scored.values() if not r.keep]
    assert sum(kept) / len(kept) > sum(dropped) / len(dropped)

    # a rerun with the same config and input loads the saved model (no retraining) and keeps the same documents
    mtime = os.path.getmtime(os.path.join(m["path"], "metrics.json"))
    run_pipeline(spark, _cfg(toy, lake, "force=true"))
    assert os.path.getmtime(os.path.join(m["path"], "metrics.json")) == mtime
    assert {r.doc_id for r in _q(spark, lake).filter("keep").collect()} == {d for d, r in scored.items()
                                                                           if r.keep} | {
        r.doc_id for r in q.filter("keep AND source != 'web'").collect()}
    # quality_model.path loads the saved model elsewhere: the same scores
    other = tmp_path / "other"
    run_pipeline(spark, _cfg(toy, other, f"quality_model.path={m['path']}", "quality_model.apply_to=[web,news]"))
    again = {r.doc_id: r.quality_model_score for r in _q(spark, other).filter("source = 'web'").collect()}
    assert again == {d: r.quality_model_score for d, r in scored.items()}
    assert _q(spark, other).filter("source = 'news' AND quality_model_score IS NOT NULL").count() == 150


def test_threshold_and_top_fraction_modes(spark, toy, tmp_path):
    from mixlake.pipeline import run_pipeline

    lake = tmp_path / "lake"
    run_pipeline(spark, _cfg(toy, lake, "quality_model.select=threshold", "quality_model.threshold=0.6",
                             "quality_model.apply_to=[web,news]"))
    rows = _q(spark, lake).filter("source IN ('web', 'news')").collect()
    assert all(r.keep == (r.quality_model_score >= 0.6) for r in rows)
    run_pipeline(spark, _cfg(toy, lake, "quality_model.select=top_fraction", "quality_model.top_fraction=0.3",
                             "quality_model.apply_to=[web,news]"))
    for source, n in (("web", 400), ("news", 150)):
        kept = _q(spark, lake).filter(f"source = '{source}' AND keep").count()
        assert abs(kept - 0.3 * n) <= 0.02 * n + 1, (source, kept)


def test_pareto_draw_has_gpt3_acceptance_rates(spark):
    """keep iff Lomax(alpha) > 1 - score: P(keep) = (2 - score)^(-alpha); on 40,000 ids per score."""
    cfg = QualityModelConfig(alpha=9.0, negative_sources=["s"])
    for s in (0.5, 0.9, 0.97, 1.0):
        df = (spark.range(40_000).select(F.col("id").cast("string").alias("doc_id"), F.lit("s").alias("source"),
                                         F.lit(s).alias("quality_model_score")))
        kept = apply_selection(df, cfg).filter("quality_model_keep").count() / 40_000
        assert abs(kept - (2 - s) ** -9) < 0.01, (s, kept)
        # the same ids give the same draws
        assert apply_selection(df, cfg).filter("quality_model_keep").count() / 40_000 == kept


def test_config_errors_name_the_key():
    from mixlake.errors import ConfigError

    with pytest.raises(ConfigError, match=r"quality_model\.select"):
        compose("quality_model.select=best")
    with pytest.raises(ConfigError, match=r"quality_model\.holdout"):
        compose("quality_model.holdout=1.5")


def test_stage_validates_sources_exist(spark, toy, tmp_path):
    from mixlake.errors import ConfigError

    with pytest.raises(ConfigError, match="positive_sources"):
        quality.validate(_cfg(toy, tmp_path, "quality_model.positive_sources=[nope]"))


def test_tokenizer_keeps_non_ascii_words(spark):
    """Spark's RegexTokenizer compiles its pattern with Java's defaults, where ``\\W`` is ASCII-only: without ``(?U)``
    "Übersetzung" lost its "Ü" and Cyrillic, Greek or accented words vanished from the features. The tokens are the
    letter/digit runs of Python's ``re`` (the normalisation the rest of mixlake uses), lowercased."""
    import re

    from mixlake.quality.model import TOKEN_PATTERN, pipeline

    texts = ["Übersetzung der Straße: café, naïve — 東京 2024!", "Привет, мир. Καλημέρα κόσμε_x", "plain ascii words_9"]
    df = spark.createDataFrame([(t,) for t in texts], "text string")
    tokens = pipeline(QualityModelConfig(negative_sources=["s"])).getStages()[0].transform(df).collect()
    assert [r.words for r in tokens] == [re.findall(r"[^\W_]+", t.lower()) for t in texts]
    assert TOKEN_PATTERN.startswith("(?U)")


def test_hashing_tf_index_equals_spark(spark):
    """top_features computes HashingTF buckets in Python instead of one py4j ``indexOf`` call per word: the two must
    agree for every tail length (0-3 bytes) and script (ASCII, accents, CJK, Cyrillic, emoji, empty, long words)."""
    from pyspark.ml.feature import HashingTF

    from mixlake.quality.model import hashing_tf_index

    words = ["the", "café", "東京", "привет", "🙂", "", "x" * 301, "naïve", "2024", "Straße", "a", "ab", "abc", "abcde"]
    for n in (1 << 20, 1000, 7):
        tf = HashingTF(numFeatures=n)
        assert [hashing_tf_index(w, n) for w in words] == [tf.indexOf(w) for w in words]
