"""Repeated-span removal against a single-process oracle (Hypothesis), on real Spark.

The oracle is written independently of the library: spans hashed on ``normalize`` of the raw substring (not of the
joined sentence normalisations), counted in a dict, the first occurrence by (doc_id, start), and the cut done
character by character.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict

import pyarrow as pa
import xxhash
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mixlake.spans.spans import (
    SpansConfig,
    _normalized_pieces,
    batch_spans,
    document_spans,
    removal_ranges,
    removal_stats,
    remove_spans,
    span_counts,
    span_occurrences,
    span_removals,
    spans_table,
    split_sentences,
)
from mixlake.text import CachedNormalizer, normalize

SETTINGS = settings(deadline=None, database=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# words with case, digits, punctuation and non-ASCII (NFKC-changed, unspaced script) forms, so that different raw
# texts normalise to the same span and the ASCII fast path and the cached per-word path both run
WORDS = ["alpha", "Alpha", "ALPHA", "beta", "beta,", "gam-ma", "d3lta", "D7LTA", "ｅｐｓｉｌｏｎ", "épsilon", "ﬁne",
         "漢字", "かな", "x_y", "(zeta)", "Ωmega", "ς", "ΣΑΣ"]
ENDS = [". ", "! ", "? ", ".\" ", "\n", "\n\n", " "]


def _sentence() -> st.SearchStrategy[str]:
    return st.builds(lambda ws, end: " ".join(ws) + end, st.lists(st.sampled_from(WORDS), min_size=1, max_size=5),
                     st.sampled_from(ENDS))


def _reference_spans(text: str, cfg: SpansConfig) -> list[tuple[int, int, int, int]]:
    """The direct form: each span's raw substring normalised on its own."""
    sents = split_sentences(text)
    words = [len(text[s:e].split()) for s, e in sents]
    out = []
    for i in range(len(sents)):
        total = 0
        for j in range(i, min(i + cfg.window, len(sents))):
            total += words[j]
            if total >= cfg.min_words:
                s, e = sents[i][0], sents[j][1]
                out.append((xxhash.xxh3_64_intdigest(normalize(text[s:e]).encode()) - (1 << 63), s, e, total))
                break
    return out


@settings(SETTINGS, max_examples=300)
@given(text=st.one_of(st.text(max_size=200),
                      st.text(alphabet=string.printable + "ΣσςΩ漢かｅﬁé²①\u00a0\u0301", max_size=200)))
def test_cached_normalizer_equals_normalize(text):
    norm = CachedNormalizer(max_words=5)  # small bound: the clearing path runs too
    assert norm(text) == normalize(text)
    assert norm(text) == normalize(text)  # second call served from the cache


def _reference_sentences(text: str) -> list[tuple[int, int]]:
    """The splitter as first written: the punctuation mark looked behind for (the oracle of the faster form)."""
    out, start = [], 0
    for m in re.finditer(r"(?<=[.!?])[\"')\]]*\s+|\n+", text):
        if m.end() > start and text[start:m.start()].strip():
            out.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        out.append((start, len(text)))
    return out


@settings(SETTINGS, max_examples=2000)
@given(text=st.one_of(st.lists(st.sampled_from([".", "!", "?", "\"", "'", ")", "]", " ", "\n", "\t", "\r", "\u2028",
                                                "\u3002", "a", "bc", "..", "?!"]), max_size=40).map("".join),
                      st.text(max_size=120)))
def test_sentence_splitter_equals_the_lookbehind_form(text):
    """Runs of punctuation, closing quotes and brackets, whitespace of every kind, sentences of a mark alone."""
    assert split_sentences(text) == _reference_sentences(text)


@settings(SETTINGS, max_examples=300)
@given(sents=st.lists(_sentence(), max_size=12), window=st.integers(1, 4), min_words=st.integers(1, 9))
def test_document_spans_equal_the_direct_form(sents, window, min_words):
    text = "".join(sents)
    cfg = SpansConfig(window=window, min_words=min_words)
    assert document_spans(text, cfg, CachedNormalizer()) == _reference_spans(text, cfg)


# texts for the batch pass: sentences of the word pool, arbitrary Unicode (whitespace of every kind, unspaced
# scripts, code points whose letter/number class differs between Unicode versions), leading and trailing whitespace,
# the batch pass's mark character U+FFFF (those texts go the per-document way), empty and null texts
_ODD = "\uffff\u00a0\u2028\u3000\u1680\x1c\x85 \t\n\r.!?\"')]漢字かなᏸ\u08c8\U0001e030\u0301²①_ﬁＡ"
_BATCH_TEXT = st.one_of(
    st.none(), st.just(""),
    st.builds(lambda pre, sents, post: pre + "".join(sents) + post, st.sampled_from(["", " ", "\n ", "\u3000"]),
              st.lists(_sentence(), max_size=10), st.sampled_from(["", " ", "\n", "\uffff"])),
    st.text(max_size=150),
    st.lists(st.sampled_from(list(_ODD) + WORDS), max_size=60).map("".join))


@settings(SETTINGS, max_examples=400)
@given(texts=st.lists(_BATCH_TEXT, max_size=8), window=st.integers(1, 4), min_words=st.integers(1, 9))
def test_batch_spans_equal_document_spans(texts, window, min_words):
    """The Arrow batch pass the job runs against the per-document form, span for span and hash for hash."""
    cfg = SpansConfig(window=window, min_words=min_words)
    doc, hs, ss, es, ns = batch_spans(pa.array(texts, pa.string()), cfg, CachedNormalizer())
    got = list(zip(doc.tolist(), hs.tolist(), ss.tolist(), es.tolist(), ns.tolist(), strict=True))
    want = [(i, *sp) for i, t in enumerate(texts) for sp in document_spans(t or "", cfg, CachedNormalizer())]
    assert got == want


@settings(SETTINGS, max_examples=400)
@given(pieces=st.lists(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(list(_ODD) + WORDS),
                                                                  max_size=20).map("".join)), max_size=8))
def test_batch_normalisation_equals_normalize(pieces):
    norm = CachedNormalizer(max_words=5)  # small bound: the clearing path runs too
    assert _normalized_pieces(pa.array(pieces, pa.string()), norm).to_pylist() == [normalize(p) for p in pieces]
    # second call served from the word memo
    assert _normalized_pieces(pa.array(pieces, pa.string()), norm).to_pylist() == [normalize(p) for p in pieces]


def _oracle(docs: dict[str, str], cfg: SpansConfig) -> tuple[dict[str, str], set[tuple]]:
    occ = [(h, d, s, e, n) for d, t in docs.items() for h, s, e, n in _reference_spans(t, cfg)]
    by_hash: dict[int, list[tuple]] = defaultdict(list)
    for o in occ:
        by_hash[o[0]].append(o)
    spans, cut = set(), defaultdict(list)
    for h, os_ in by_hash.items():
        if len(os_) < cfg.min_count:
            continue
        first = min(os_, key=lambda o: (o[1], o[2]))
        spans.add((h, len(os_), len({o[1] for o in os_}), max(o[4] for o in os_),
                   len(os_) - (1 if cfg.keep == "first" else 0), docs[first[1]][first[2]:first[3]]))
        for o in os_:
            if cfg.keep == "none" or o is not first:
                cut[o[1]].append((o[2], o[3]))
    cleaned = {}
    for d, t in docs.items():
        keep = [True] * len(t)
        for s, e in cut[d]:
            keep[s:e] = [False] * (e - s)
        # an untouched document keeps its text as it was; a cut one is stripped
        cleaned[d] = "".join(c for c, k in zip(t, keep, strict=True) if k).strip() if cut[d] else t
    return cleaned, spans


@st.composite
def corpora(draw):
    pool = draw(st.lists(_sentence(), min_size=1, max_size=6))
    hot = draw(st.booleans())  # one sentence in every document: the hot key the stage exists for
    n_docs = draw(st.integers(0, 25))
    ids = draw(st.lists(st.text(alphabet="0123456789abcdef", min_size=1, max_size=6), min_size=n_docs,
                        max_size=n_docs, unique=True))  # random id order vs. position order
    docs = {}
    for d in ids:
        sents = draw(st.lists(st.sampled_from(pool), max_size=8))
        if hot:
            sents.insert(draw(st.integers(0, len(sents))), pool[0])
        docs[d] = "".join(sents)
    return docs


@settings(SETTINGS, max_examples=12)
@given(docs=corpora(), window=st.integers(1, 3), min_words=st.integers(2, 8), min_count=st.integers(2, 4),
       keep=st.sampled_from(["first", "none"]))
def test_span_removal_matches_the_oracle(spark, docs, window, min_words, min_count, keep):
    cfg = SpansConfig(window=window, min_words=min_words, min_count=min_count, keep=keep)
    # documents that are blank already (no span): dropped from documents_clean as emptied, like a cut-out one
    docs = {**docs, "~blank": "  ", "~empty": ""}
    df = spark.createDataFrame(sorted(docs.items()), "doc_id string, text string").repartition(3)
    occ = span_occurrences(df, cfg)
    counts = span_counts(occ, cfg)
    removals = span_removals(occ, counts, cfg)
    cleaned = {r.doc_id: r.text for r in remove_spans(df, removals).collect()}
    got_spans = {tuple(r) for r in spans_table(counts, df, cfg).collect()}
    want_cleaned, want_spans = _oracle(docs, cfg)
    assert got_spans == want_spans
    assert cleaned == want_cleaned
    # the stage's counts (documents left blank, characters cut from the kept ones), computed by cutting again only
    # the documents with ranges or already blank; blank as Spark's trim (spaces) sees it
    stats = removal_stats(df, removal_ranges(removals)).first()
    blank = {d for d, t in want_cleaned.items() if not t.strip(" ")}
    assert stats.emptied == len(blank)
    assert stats.removed_chars == sum(len(docs[d]) - len(t) for d, t in want_cleaned.items() if d not in blank)


def test_a_hot_span_is_not_windowed(spark):
    """One span in every document: one occurrence survives (keep=first), and the plan has no window over the hash."""
    boiler = "Accept our cookies to continue browsing this website today. "
    docs = [(f"d{i:05d}", f"Document {i} opens with its own words here. " + boiler + f"It ends with {i}.")
            for i in range(3000)]
    df = spark.createDataFrame(docs, "doc_id string, text string").repartition(4)
    cfg = SpansConfig(min_words=8)
    occ = span_occurrences(df, cfg)
    counts = span_counts(occ, cfg)
    removals = span_removals(occ, counts, cfg)
    plan = removals._jdf.queryExecution().executedPlan().toString() + counts._jdf.queryExecution().executedPlan() \
        .toString()
    assert "Window" not in plan
    out = remove_spans(df, removals)
    assert out.filter(out.text.contains("Accept our cookies")).select("doc_id").collect()[0].doc_id == "d00000"
    assert out.filter(out.text.contains("Accept our cookies")).count() == 1
