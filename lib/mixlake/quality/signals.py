"""Per-document quality signals, computed in one vectorised ``mapInArrow`` pass per Arrow batch.

The line-, word- and marker-level signals of Gopher (Rae et al. 2021, appendix A), C4 (Raffel et al. 2020, §2.2) and
FineWeb (Penedo et al. 2024), following datatrove's ``GopherQualityFilter``, ``C4QualityFilter`` and
``FineWebQualityFilter``, run as Arrow compute kernels over all the batch's lines and words at once
(:func:`line_word_signals`); Gopher's repetition signals (top/duplicate n-gram character fractions) and language
identification run beside them in the same pass, so the text crosses from the JVM once and no join is needed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from mixlake.quality.langid import detect_languages
from mixlake.text import PY_WS

STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]  # Gopher's required stop words
POLICY = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"]
# java.util.regex's \s (ASCII only; RE2's \s lacks \x0B) and its `$` without MULTILINE: the end of the input, or
# before a line terminator that ends the input. The rules' expressions were first written as Spark SQL (Java regex);
# these RE2 forms match the same strings (tests/test_quality_spans.py compares them with the Spark expressions).
JAVA_WS = "[ \\t\\n\\x0B\\f\\r]"
JAVA_END = "(?:\\r\\n|[\\n\\r\\x{85}\\x{2028}\\x{2029}])?$"
TERMINAL = "[.!?][\"')\\]]*" + JAVA_WS + "*" + JAVA_END
BULLET = "^" + JAVA_WS + "*[•\\-\\*·‣◦⁃]"
ELLIPSIS = "(?:\\.\\.\\.|…)" + JAVA_WS + "*" + JAVA_END
JAVASCRIPT = "".join(f"[{c}{c.upper()}]" for c in "javascript")  # ASCII-only case folding, as Java's (?i)
SENTENCE_END = "[.!?]" + JAVA_WS + "+"


def _frac(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(len(den), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _bools(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _ints(values: pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False).astype(np.int64)


def _lowered_contains(values: pa.Array, candidates: np.ndarray, phrases: list[str]) -> np.ndarray:
    """Of the ``candidates`` (a superset from RE2's case-insensitive match), those whose lower case contains one of
    ``phrases`` — Java's and Python's full mapping, in which ``İ`` becomes two code points (Arrow's per-code-point
    ``utf8_lower`` makes it one); candidates are few."""
    out = candidates.copy()
    for i in np.flatnonzero(candidates).tolist():
        low = values[i].as_py().lower()
        out[i] = any(p in low for p in phrases)
    return out


def _first_occurrences(values: pa.Array, parents: np.ndarray) -> np.ndarray:
    """Indices of each document's first occurrence of each of its distinct values (``parents``: the document of
    each value, non-decreasing)."""
    ids = _ints(pc.dictionary_encode(values).indices)
    _, first = np.unique(parents * (int(ids.max(initial=0)) + 1) + ids, return_index=True)
    return first


def _distinct_per_parent(values: pa.Array, parents: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(parents[_first_occurrences(values, parents)], minlength=n)


def line_word_signals(texts: pa.Array) -> dict[str, np.ndarray]:
    """Gopher's, C4's and FineWeb's line, word and marker signals of a batch of texts, in Arrow compute kernels (RE2)
    over all the batch's lines and words at once; per-document counts by ``bincount`` over list parent indices.

    Definitions (they are those of the Spark SQL expressions this replaced, kept as the test's oracle): a *line* is
    a piece of ``split(text, "\\n")`` with a character other than a space; a *paragraph* a piece of
    ``split(text, "\\n\\s*\\n")`` likewise; a *word* a maximal run of characters other than ``\\s``; lengths count
    code points; ``frac_dup_lines``/``frac_dup_paras`` are 1 − distinct/all; ``sentences`` the non-blank pieces of
    ``split(text, "(?<=[.!?])\\s+")``.
    """
    n = len(texts)
    texts = pc.fill_null(texts, "")
    lines_l = pc.split_pattern(texts, "\n")
    lines, lp = pc.list_flatten(lines_l), _ints(pc.list_parent_indices(lines_l))
    nonblank = _bools(pc.match_substring_regex(lines, "[^ ]"))
    lines, lp = lines.filter(pa.array(nonblank)), lp[nonblank]
    n_lines = np.bincount(lp, minlength=n)

    def lines_where(mask: np.ndarray) -> np.ndarray:
        return np.bincount(lp[mask], minlength=n)

    paras_l = pc.split_pattern_regex(texts, "\n" + JAVA_WS + "*\n")
    paras, pp = pc.list_flatten(paras_l), _ints(pc.list_parent_indices(paras_l))
    para_ok = _bools(pc.match_substring_regex(paras, "[^ ]"))
    paras, pp = paras.filter(pa.array(para_ok)), pp[para_ok]
    n_paras = np.bincount(pp, minlength=n)

    # Arrow's ASCII whitespace is Java's \s (space, \t \n \x0B \f \r); the split leaves empty pieces at the ends
    words_l = pc.ascii_split_whitespace(texts)
    words, wp = pc.list_flatten(words_l), _ints(pc.list_parent_indices(words_l))
    word_ok = _bools(pc.not_equal(words, ""))
    # each distinct word's properties once: a batch has ~25x fewer distinct words than words
    encoded = pc.dictionary_encode(words.filter(pa.array(word_ok)))
    wp, word_ids, vocabulary = wp[word_ok], _ints(encoded.indices), encoded.dictionary
    n_words = np.bincount(wp, minlength=n)
    word_chars = np.bincount(wp, weights=_ints(pc.utf8_length(vocabulary))[word_ids], minlength=n)  # exact < 2^53

    def words_where(vocabulary_mask: np.ndarray) -> np.ndarray:
        return np.bincount(wp[vocabulary_mask[word_ids]], minlength=n)

    # ASCII lower case is Java's here: the one non-ASCII character that lower-cases to ASCII is the Kelvin sign
    # (to "k", in no stop word)
    stop = _bools(pc.is_in(pc.ascii_lower(vocabulary), value_set=pa.array(STOP_WORDS)))
    policy = _lowered_contains(lines, _bools(pc.match_substring_regex(lines, "|".join(POLICY), ignore_case=True)),
                               POLICY)
    lorem = _lowered_contains(texts, _bools(pc.match_substring(texts, "lorem ipsum", ignore_case=True)),
                              ["lorem ipsum"])
    n_sentence_ends = _ints(pc.count_substring_regex(texts, SENTENCE_END))
    # split at each `[.!?]\s+`: every piece before a split ends with the mark (not blank); the last is blank when
    # the text ends with the split, and with no split the text is the one piece
    last_piece = ~_bools(pc.match_substring_regex(texts, SENTENCE_END + "$"))
    sentences = np.where(n_sentence_ends > 0, n_sentence_ends + last_piece,
                         _bools(pc.match_substring_regex(texts, "[^ ]")))
    symbols = _ints(pc.count_substring(texts, "#")) + _ints(pc.count_substring_regex(texts, "\\.\\.\\.|…"))
    return {
        "n_words": n_words,
        "n_lines": n_lines,
        "mean_word_length": _frac(word_chars, n_words),
        "symbol_word_ratio": _frac(symbols, n_words),
        "frac_lines_terminal_punct": _frac(lines_where(_bools(pc.match_substring_regex(lines, TERMINAL))), n_lines),
        "frac_lines_bullet": _frac(lines_where(_bools(pc.match_substring_regex(lines, BULLET))), n_lines),
        "frac_lines_ellipsis": _frac(lines_where(_bools(pc.match_substring_regex(lines, ELLIPSIS))), n_lines),
        "frac_words_alpha": _frac(words_where(_bools(pc.match_substring_regex(vocabulary, "\\pL"))), n_words),
        "stop_words": words_where(stop),
        "frac_dup_lines": _frac(n_lines - _distinct_per_parent(lines, lp, n), n_lines),
        "frac_dup_paras": _frac(n_paras - _distinct_per_parent(paras, pp, n), n_paras),
        "has_lorem_ipsum": lorem.astype(np.int64),
        "has_curly_brace": _bools(pc.match_substring(texts, "{")).astype(np.int64),
        "javascript_lines": lines_where(_bools(pc.match_substring_regex(lines, JAVASCRIPT))),
        "policy_lines": lines_where(policy),
        "frac_short_lines": _frac(lines_where(_ints(pc.utf8_length(lines)) <= 30), n_lines),
        "newline_ratio": _frac(_ints(pc.count_substring(texts, "\n")), n_words),
        "sentences": sentences.astype(np.int64),
    }


def _dup_char_frac(values: pa.Array, parents: np.ndarray, n: int) -> np.ndarray:
    """Per document: the characters of its elements (lines, paragraphs) that repeat an earlier identical element,
    over all its elements' characters (0 without elements) — all but each distinct element's first occurrence."""
    lengths = _ints(pc.utf8_length(values))
    first = _first_occurrences(values, parents)
    total = np.bincount(parents, weights=lengths, minlength=n)
    return _frac(total - np.bincount(parents[first], weights=lengths[first], minlength=n), total)


def _non_blank(pieces_l: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The pieces with a non-whitespace character (Python's ``if x.strip()``) and their documents."""
    pieces, parents = pc.list_flatten(pieces_l), _ints(pc.list_parent_indices(pieces_l))
    keep = ~(_bools(pc.utf8_is_space(pieces)) | _bools(pc.equal(pieces, "")))
    return pieces.filter(pa.array(keep)), parents[keep]


def repetition_signals(texts: pa.Array, max_words: int = 20_000,
                       group_words: int = 32_768) -> dict[str, np.ndarray]:
    """Gopher repetition (Rae et al. 2021, table A1) for a batch of texts: duplicate line/paragraph character
    fractions, the top 2/3/4-gram character fraction (the most frequent n-gram, first seen first on ties, as
    ``Counter.most_common``) and the duplicate 5..10-gram character fractions (datatrove ``find_top_duplicate`` /
    ``find_all_duplicate``: scanning left to right, an n-gram seen before counts its characters and the scan jumps
    past it). Words are ``str.split()``'s, the first ``max_words`` of a text.

    Vectorised over the whole batch: every n-gram is an exact integer id — the document's (n-1)-gram id paired with
    the next word's id, numbered densely again by Arrow's ``dictionary_encode`` (a hash table: ids in order of first
    occurrence, so a document's tie-break is its earliest n-gram) — ids, not hashes of text, so no collisions. An
    n-gram can repeat only if both (n-1)-grams in it repeat, so each round numbers just those positions; the rest
    are unique. The jump-ahead scan is sequential, but visits only positions of repeated n-grams. Property-tested
    equal to the string-by-string reference (``tests/test_quality_spans.py``).
    """
    n = len(texts)
    texts = pc.fill_null(texts, "")
    out = {"frac_dup_line_chars": _dup_char_frac(*_non_blank(pc.split_pattern(texts, "\n")), n),
           "frac_dup_para_chars": _dup_char_frac(*_non_blank(pc.split_pattern_regex(texts, "\n" + PY_WS + "*\n")), n)}
    for g in range(2, 11):
        out[f"top_{g}gram_char_frac" if g <= 4 else f"dup_{g}gram_char_frac"] = np.zeros(n)
    # Arrow 26's utf8_split_whitespace sometimes keeps a text's last whitespace character in its last piece (not
    # repeatably: found by the property test; ~0.4% of random texts ending in whitespace): so none is left to keep.
    # The split leaves an empty piece where a text starts with whitespace (dropped below).
    words_l = pc.utf8_split_whitespace(pc.utf8_rtrim_whitespace(texts))
    words, wp = pc.list_flatten(words_l), _ints(pc.list_parent_indices(words_l))
    keep = _bools(pc.not_equal(words, ""))
    words, wp = words.filter(pa.array(keep)), wp[keep]
    starts = np.searchsorted(wp, np.arange(n))
    position = np.arange(len(wp)) - starts[wp]
    keep = position < max_words
    words, wp, position = words.filter(pa.array(keep)), wp[keep], position[keep]
    if len(wp) == 0:
        return out
    n_words = np.bincount(wp, minlength=n)
    encoded = pc.dictionary_encode(words)
    word_ids, vocabulary = _ints(encoded.indices), len(encoded.dictionary)
    chars_before = np.zeros(len(wp) + 1, dtype=np.int64)  # characters (code points, as len) of the words before
    np.cumsum(_ints(pc.utf8_length(encoded.dictionary))[word_ids], out=chars_before[1:])
    total = np.bincount(wp, weights=np.diff(chars_before), minlength=n)
    total[total == 0] = 1
    dup_chars = {g: np.zeros(n, dtype=np.int64) for g in range(5, 11)}
    # whole documents in groups of about `group_words` words: the hash tables stay in cache (one table for a
    # 10,000-document batch made the n-gram numbering 4x slower)
    group = np.searchsorted(wp, np.arange(n)) // group_words  # by the document's first word
    bounds = np.flatnonzero(np.diff(group[wp], prepend=-1, append=-2))
    for w0, w1 in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        _ngram_signals(word_ids[w0:w1], wp[w0:w1], position[w0:w1], n_words, chars_before[w0:w1 + 1], total,
                       vocabulary, out, dup_chars)
    for g in range(5, 11):
        out[f"dup_{g}gram_char_frac"] = dup_chars[g] / total
    return out


def _ngram_signals(word_ids: np.ndarray, wp: np.ndarray, position: np.ndarray, n_words: np.ndarray,
                   chars_before: np.ndarray, total: np.ndarray, vocabulary: int, out: dict[str, np.ndarray],
                   dup_chars: dict[int, np.ndarray]) -> None:
    """:func:`repetition_signals`' n-gram part for the words of some whole documents (``wp``: their documents in
    the batch, ``position``: in the document); writes the top fractions into ``out``, adds to ``dup_chars``."""
    # the document's 1-gram ids; -1 where an n-gram is known to occur once in its document
    gram_ids = _ints(pc.dictionary_encode(pa.array(wp * vocabulary + word_ids)).indices)
    repeated = np.bincount(gram_ids)[gram_ids] > 1
    for g in range(2, 11):
        starts_ok = position <= n_words[wp] - g  # an n-gram starts here inside the document
        candidates = np.zeros(len(wp), dtype=bool)
        candidates[:-1] = starts_ok[:-1] & repeated[:-1] & repeated[1:]
        at = np.flatnonzero(candidates)
        # < (words here) * vocabulary: no int64 overflow
        encoded = pc.dictionary_encode(pa.array(gram_ids[at] * vocabulary + word_ids[at + g - 1]))
        ids = _ints(encoded.indices)
        counts = np.bincount(ids, minlength=len(encoded.dictionary))[ids]
        gram_ids = np.full(len(wp), -1, dtype=np.int64)
        gram_ids[at] = ids
        repeated = np.zeros(len(wp), dtype=bool)
        repeated[at] = counts > 1
        at, ids, counts = at[counts > 1], ids[counts > 1], counts[counts > 1]
        if len(at) == 0:
            break  # no repeated n-gram, so none longer
        docs = wp[at]
        gram_chars = chars_before[at + g] - chars_before[at]
        if g <= 4:
            top_docs, first = np.unique(docs, return_index=True)
            most = np.maximum.reduceat(counts, first)  # per document (its positions are contiguous)
            top = counts == np.repeat(most, np.diff(np.append(first, len(docs))))
            # the first position with the document's top count is the first occurrence of its first-seen top n-gram
            _, first_top = np.unique(docs[top], return_index=True)
            out[f"top_{g}gram_char_frac"][top_docs] = (gram_chars[top][first_top] * most) / total[top_docs]
            continue
        seen: set[int] = set()  # ids are per document: one set for the group
        next_start = 0  # a jump ends inside its document, so it never skips into the next
        for i, gram, d, c in zip(at.tolist(), ids.tolist(), docs.tolist(), gram_chars.tolist(), strict=True):
            if i < next_start:  # jumped over
                continue
            if gram in seen:
                dup_chars[g][d] += c
                next_start = i + g
            else:
                seen.add(gram)
                next_start = i + 1


REPETITION_COLUMNS = (["frac_dup_line_chars", "frac_dup_para_chars"] + [f"top_{n}gram_char_frac" for n in (2, 3, 4)]
                      + [f"dup_{n}gram_char_frac" for n in range(5, 11)])
INT_SIGNALS = ["n_words", "n_lines", "stop_words", "has_lorem_ipsum", "has_curly_brace", "javascript_lines",
               "policy_lines", "sentences"]
LINE_WORD_COLUMNS = ["n_words", "n_lines", "mean_word_length", "symbol_word_ratio", "frac_lines_terminal_punct",
                     "frac_lines_bullet", "frac_lines_ellipsis", "frac_words_alpha", "stop_words", "frac_dup_lines",
                     "frac_dup_paras", "has_lorem_ipsum", "has_curly_brace", "javascript_lines", "policy_lines",
                     "frac_short_lines", "newline_ratio", "sentences"]
SIGNAL_COLUMNS = [*LINE_WORD_COLUMNS, *REPETITION_COLUMNS, "lang", "lang_score"]
SIGNALS_DDL = "doc_id string, source string, " + ", ".join(
    f"{c} {'int' if c in INT_SIGNALS else 'string' if c == 'lang' else 'double'}" for c in SIGNAL_COLUMNS)


def quality_signals(docs: DataFrame, langid_backend: str = "langid", max_words: int = 20_000) -> DataFrame:
    """``documents`` rows → ``doc_id, source`` + every signal column (``SIGNAL_COLUMNS``), one pass per Arrow batch.
    A null text is scored as the empty text."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            texts = pc.fill_null(b.column("text"), "")
            signals = {**line_word_signals(texts), **repetition_signals(texts, max_words)}
            langs = detect_languages(texts.to_pylist(), langid_backend)
            cols = [b.column("doc_id"), b.column("source")]
            for c in SIGNAL_COLUMNS:
                if c == "lang":
                    cols.append(pa.array([x[0] for x in langs], pa.string()))
                elif c == "lang_score":
                    cols.append(pa.array([x[1] for x in langs], pa.float64()))
                else:
                    cols.append(pa.array(signals[c].astype(np.int32 if c in INT_SIGNALS else np.float64)))
            yield pa.RecordBatch.from_arrays(cols, names=["doc_id", "source", *SIGNAL_COLUMNS])

    return docs.select("doc_id", "source", "text").mapInArrow(run, SIGNALS_DDL)
