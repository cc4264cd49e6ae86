"""Token counts and the mixture planner reproduce published arithmetic."""

import math

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from conftest import compose, sample_lake_cfg
from mixlake.config import ConfigError
from mixlake.mixture.plan import (
    MixtureConfig,
    budget,
    chinchilla_params_for_flops,
    effective_tokens,
    plan_ladder,
    plan_markdown,
    plan_mixture,
    unimax_tokens,
)
from mixlake.mixture.streams import streams_config
from mixlake.tokens.tokenizer import (
    TokenizerConfig,
    encode_batch,
    eos_id,
    load_tokenizer,
    tokenizer_fingerprint,
    vocab_size,
)

MPT_AVAILABLE = {  # billions of tokens, MPT-7B data card
    "mc4": 2417.99, "c4": 100.42, "rp_cc": 878.45, "stack": 463.78, "rp_wiki": 4.87, "stack_md": 107.07,
    "s2orc": 48.85, "rp_books": 26.02, "rp_arxiv": 28.10, "rp_se": 20.54}
MPT_PROPORTION = {"mc4": 0.33, "c4": 0.299, "rp_cc": 0.10, "stack": 0.10, "rp_wiki": 0.04, "stack_md": 0.035,
                  "s2orc": 0.033, "rp_books": 0.03, "rp_arxiv": 0.019, "rp_se": 0.014}
MPT_EPOCHS = {"mc4": 0.14, "c4": 2.98, "rp_cc": 0.11, "stack": 0.22, "rp_wiki": 8.21, "stack_md": 0.33,
              "s2orc": 0.68, "rp_books": 1.15, "rp_arxiv": 0.68, "rp_se": 0.68}


def test_gpt2_tokenizer_offline():
    c = TokenizerConfig()
    assert encode_batch(c, ["Hello world"]) == [[15496, 995]]
    assert encode_batch(c, [" Hello world", "The quick brown fox"]) == [[18435, 995], [464, 2068, 7586, 21831]]
    assert eos_id(c) == 50256 and vocab_size(c) == 50257
    assert load_tokenizer(c).decode(encode_batch(c, ["naïve café 👋"])[0]) == "naïve café 👋"


# pieces where GPT-2's pre-tokenizer has its edge cases: every kind of whitespace (the \s+(?!\S) rule), contractions
# in both cases, digits of other scripts, marks, unspaced scripts, emoji sequences, controls, the EOS text itself
_PIECES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000", "\u2028", "\u3000",
           "\u200b", "\ufeff", "'s", "'S", "'ll", "'LL", "'d", "'t", "'re", "'ve", "'m", "'", "abc", "ABC", "Hello",
           "0", "123", "٣", "४", "½", "²", "é", "e\u0301", "\u20dd", "漢字", "かな", "한국어", "ไทย", "😀", "👍🏽",
           "🇩🇪", "\u200d", ".", ",", "!?", "—", "\"", "(", ")", "<|endoftext|>", "\x00", "\x7f", "\U0010fffd", "ǅ",
           "Ⅻ", "𝐀"]
_TEXTS = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(st.characters(exclude_categories=["Cs"]), max_size=8)),
                  max_size=40).map("".join)


@settings(deadline=None, database=None, derandomize=True, phases=[Phase.explicit, Phase.generate], max_examples=3000)
@given(texts=st.lists(_TEXTS, max_size=4))
def test_tiktoken_gpt2_equals_tokenizers(texts):
    """The default GPT-2 engine (tiktoken) gives exactly the ids of Hugging Face tokenizers on the same files."""
    assert encode_batch(TokenizerConfig(), texts) == encode_batch(TokenizerConfig(engine="hf"), texts)


def test_tokenizer_engine_is_validated_and_fingerprinted():
    assert tokenizer_fingerprint(TokenizerConfig()) != tokenizer_fingerprint(TokenizerConfig(engine="hf"))
    with pytest.raises(ConfigError, match=r"tokenizer\.engine"):
        encode_batch(TokenizerConfig(engine="sentencepiece"), ["x"])
    from mixlake.stages.tokens import validate

    validate(compose("tokenizer.engine=hf"))
    with pytest.raises(ConfigError, match=r"tokenizer\.engine"):  # before any stage runs
        validate(compose("tokenizer.engine=sentencepiece"))


def test_tokenizer_by_path(tmp_path):
    p = tmp_path / "tokenizer.json"
    load_tokenizer(TokenizerConfig()).save(str(p))
    assert encode_batch(TokenizerConfig(path=str(p)), ["Hello world"]) == [[15496, 995]]
    with pytest.raises(ConfigError, match=r"tokenizer\.path"):
        load_tokenizer(TokenizerConfig(path=str(tmp_path / "missing.json")))


def test_chinchilla_arithmetic():
    _, d, _ = budget(MixtureConfig(model_params=70e9))
    assert d == pytest.approx(1.4e12)
    n2 = chinchilla_params_for_flops(5.76e23)
    assert n2 == pytest.approx(69.3e9, rel=0.01) and 20 * n2 == pytest.approx(1.39e12, rel=0.01)
    n3, d3, _ = budget(MixtureConfig(budget_flops=5.76e23))
    assert n3 == pytest.approx(n2) and d3 == pytest.approx(20 * n2)
    assert budget(MixtureConfig(model_params=7e9, tokens_per_param=200))[1] == pytest.approx(1.4e12)
    with pytest.raises(ConfigError, match="exactly one"):
        budget(MixtureConfig(model_params=1e9, budget_tokens=1e9))


def test_mpt_table_reproduced():
    unique = {k: v * 1e9 for k, v in MPT_AVAILABLE.items()}
    cfg = MixtureConfig(strategy="weights", weights=MPT_PROPORTION, max_epochs=None, budget_tokens=1e12)
    plan = plan_mixture(unique, cfg)
    got = {r.source: r for r in plan.rows}
    for s, ep in MPT_EPOCHS.items():
        assert round(got[s].epochs, 2) == pytest.approx(ep, abs=0.011), s
    assert sum(r.proportion for r in plan.rows) == pytest.approx(1.0)
    assert "many_epochs" in got["rp_wiki"].flags  # 8.21 epochs: beyond the ~4 where repetition stays cheap
    md = plan_markdown(plan)
    assert "| rp_wiki | 4.87 B | 0.040 | 40.00 B | 8.21 |" in md


def test_epoch_cap_redistributes_and_fails_clearly():
    unique = {k: v * 1e9 for k, v in MPT_AVAILABLE.items()}
    cfg = MixtureConfig(strategy="weights", weights=MPT_PROPORTION, max_epochs=4, budget_tokens=1e12)
    plan = plan_mixture(unique, cfg)
    got = {r.source: r for r in plan.rows}
    assert got["rp_wiki"].epochs == pytest.approx(4.0) and "capped" in got["rp_wiki"].flags
    assert sum(r.tokens for r in plan.rows) == pytest.approx(1e12)
    # the excess went to the others in proportion: their ratios are unchanged
    assert got["mc4"].tokens / got["c4"].tokens == pytest.approx(0.33 / 0.299)
    assert any("rp_wiki" in n and "capped" in n for n in plan.notes)
    with pytest.raises(ConfigError, match="unique tokens exist"):
        plan_mixture({"a": 100.0, "b": 50.0}, MixtureConfig(budget_tokens=1000.0, max_epochs=4))


def test_unimax_worked_example():
    # budget 1000 over sources of 10, 100, 1000 tokens with max 4 epochs: the smallest gets its cap (40),
    # then the fair share of the remaining 960 over 2 is 480: 100 is capped at 400, the largest gets 560
    t = unimax_tokens({"a": 10.0, "b": 100.0, "c": 1000.0}, 1000.0, 4.0)
    assert t == {"a": 40.0, "b": 400.0, "c": 560.0}
    plan = plan_mixture({"a": 10.0, "b": 100.0, "c": 1000.0}, MixtureConfig(strategy="unimax", budget_tokens=1000.0))
    assert {r.source: r.epochs for r in plan.rows} == {"a": 4.0, "b": 4.0, "c": 0.56}


def test_temperature_and_natural():
    unique = {"big": 900.0, "small": 100.0}
    nat = plan_mixture(unique, MixtureConfig(budget_tokens=500.0))
    assert {r.source: r.proportion for r in nat.rows} == pytest.approx({"big": 0.9, "small": 0.1})
    temp = plan_mixture(unique, MixtureConfig(strategy="temperature", temperature=2.0, budget_tokens=500.0))
    assert {r.source: r.proportion for r in temp.rows} == pytest.approx({"big": 0.75, "small": 0.25})


def test_effective_tokens():
    assert effective_tokens(100.0, 1.0) == 100.0
    assert effective_tokens(100.0, 0.5) == 50.0
    assert effective_tokens(100.0, 4.0) == pytest.approx(100 + 100 * 15.39 * (1 - math.exp(-3 / 15.39)))
    assert effective_tokens(100.0, 4.0) < 400.0


def test_ladder_and_streams():
    unique = {"web": 8e9, "wiki": 1e9}
    plans = plan_ladder(unique, MixtureConfig(model_params=125e6, ladder=[125e6, 350e6]))
    assert [p.budget_tokens for p in plans] == pytest.approx([2.5e9, 2.5e9, 7e9])
    s = streams_config(plans[0], "/lake/mds", "/tmp/cache", "s3://b/mds", "tokens", 2048, {"web": 500, "wiki": 900})
    loaded = yaml.safe_load(yaml.safe_dump(s))
    streams = loaded["train_loader"]["dataset"]["streams"]
    assert sum(v["proportion"] for v in streams.values()) == pytest.approx(1.0)
    assert streams["web"] == {"remote": "s3://b/mds/web", "local": "/tmp/cache/web", "proportion": pytest.approx(0.8889,
                                                                                                               abs=1e-4)}
    text = streams_config(plans[0], "/lake/mds", "/tmp/c", None, "text", 2048, {"web": 500.0, "wiki": 1000.0})
    ts = text["train_loader"]["dataset"]["streams"]
    assert ts["wiki"]["choose"] == round(plans[0].rows[1].tokens / 1000.0)


def test_tokens_and_mix_stages(spark, sample_lake, tmp_path):
    from deltalake import DeltaTable

    from mixlake.delta import table_path
    from mixlake.stages import mix, tokens

    base, _ = sample_lake
    cfg = sample_lake_cfg(base, "[ingest,tokens,mix]")
    r1 = tokens.run(spark, cfg)
    assert r1.details["input_table"] == "documents"
    counts = spark.read.format("delta").load(table_path(cfg.lake, "token_counts"))
    first = sorted((r.doc_id, r.n_tokens) for r in counts.collect())
    # equal to a single-process count
    docs = DeltaTable(table_path(cfg.lake, r1.details["input_table"])).to_pandas()
    tc = TokenizerConfig()
    local = sorted(zip(docs["doc_id"], (len(x) for x in encode_batch(tc, list(docs["text"]))), strict=True))
    assert first == local
    tokens.run(spark, cfg)
    assert sorted((r.doc_id, r.n_tokens) for r in counts.collect()) == first  # rerun: identical
    mix.run(spark, cfg)
    lake_root = cfg.lake
    with open(f"{lake_root}/streams.yaml") as f:
        streams = yaml.safe_load(f)
    ss = streams["train_loader"]["dataset"]["streams"]
    assert sum(v["proportion"] for v in ss.values()) == pytest.approx(1.0)
    assert set(ss) == {"web", "wiki", "code", "books", "crawl"}
    with open(f"{lake_root}/report/mixture.md") as f:
        assert "| web |" in f.read()


def test_mix_budget_config_from_command_line():
    m = compose("model.params=7e9", "mixture.max_epochs=8").mixture
    assert m.model_params == 7e9 and m.max_epochs == 8.0 and m.budget_tokens is None
    m2 = compose("budget.flops=5.76e23", "sample.enabled=false").mixture
    assert budget(m2)[0] == pytest.approx(69.3e9, rel=0.01)
