"""Per-document quality signals, computed in one vectorised ``mapInArrow`` pass per Arrow batch.

The line-, word- and marker-level signals of Gopher (Rae et al. 2021, appendix A), C4 (Raffel et al. 2020, §2.2) and
FineWeb (Penedo et al. 2024), following datatrove's ``GopherQualityFilter``, ``C4QualityFilter`` and
``FineWebQualityFilter``, run as Arrow compute kernels over all the batch's lines and words at once
(:func:`line_word_signals`); Gopher's repetition signals (top/duplicate n-gram character fractions) and language
identification run beside them in the same pass, so the text crosses from the JVM once and no join is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from mixlake.quality.langid import detect_languages

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


def _distinct_per_parent(values: pa.Array, parents: np.ndarray, n: int) -> np.ndarray:
    ids = pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    keys = np.unique(parents.astype(np.int64) * (int(ids.max(initial=0)) + 1) + ids)
    return np.bincount(keys // (int(ids.max(initial=0)) + 1), minlength=n)


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


def _dup_elements_char_frac(elements: list[str]) -> float:
    """Characters in elements that repeat an earlier identical element, over all characters."""
    total = sum(len(e) for e in elements)
    seen: set[str] = set()
    dup = 0
    for e in elements:
        if e in seen:
            dup += len(e)
        else:
            seen.add(e)
    return dup / total if total else 0.0


PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def repetition_signals(text: str, max_words: int = 20_000) -> dict[str, float]:
    """Gopher repetition (Rae et al. 2021, table A1): duplicate line/paragraph character fractions, the top 2/3/4-gram
    character fraction (the most frequent n-gram, first seen first on ties, as ``Counter.most_common``) and the
    duplicate 5..10-gram character fractions (datatrove ``find_top_duplicate`` / ``find_all_duplicate``: scanning
    left to right, an n-gram seen before counts its characters and the scan jumps past it).

    Vectorised: every n-gram is an exact integer id (the (n-1)-gram's id paired with the next word's id, numbered
    densely again by Arrow's ``dictionary_encode`` — ids, not hashes of text, so no collisions), counted in NumPy.
    The jump-ahead scan is sequential, but only an n-gram that occurs at least twice can be a repeat or make one, so
    the loop visits just those positions: an n-gram occurring once only moves the scan one word on. Property-tested
    equal to the string-by-string reference (``tests/test_quality_spans.py``); 4.7x its speed (2,406 vs 512 docs/s on
    4,000 scale-20 sample documents, one process).
    """
    out: dict[str, float] = {
        "frac_dup_line_chars": _dup_elements_char_frac([x for x in text.split("\n") if x.strip()]),
        "frac_dup_para_chars": _dup_elements_char_frac([x for x in PARAGRAPH_BREAK.split(text) if x.strip()]),
    }
    words = pa.array(text.split()[:max_words], pa.string())
    n_words = len(words)
    encoded = pc.dictionary_encode(words)  # word ids in C++ (a dict in Python costs 3x the rest of this function)
    word_ids, n_vocabulary = encoded.indices.to_numpy().astype(np.int64), len(encoded.dictionary)
    chars_before = np.zeros(n_words + 1, dtype=np.int64)  # characters (code points, as len) of words[:i]
    np.cumsum(pc.utf8_length(words).to_numpy(), out=chars_before[1:])
    total = int(chars_before[-1]) or 1
    # ids of the n-grams starting at each position, numbered in order of first occurrence
    gram_ids, all_unique = word_ids, n_vocabulary == n_words
    for n in range(2, 11):
        positions = n_words - n + 1
        top, dup = f"top_{n}gram_char_frac", f"dup_{n}gram_char_frac"
        if positions <= 0 or all_unique:  # no n-grams, or every (n-1)-gram (so every n-gram) is unique
            out[top if n <= 4 else dup] = 0.0
            continue
        pairs = gram_ids[:positions] * n_vocabulary + word_ids[n - 1:]  # < 20,000^2: no overflow
        encoded = pc.dictionary_encode(pa.array(pairs))  # a hash table: ids in first-occurrence order, no sort
        gram_ids = encoded.indices.to_numpy().astype(np.int64)
        counts = np.bincount(gram_ids, minlength=len(encoded.dictionary))
        all_unique = len(encoded.dictionary) == positions
        gram_chars = chars_before[n:] - chars_before[:positions]
        if n <= 4:
            most = int(counts.max())
            if most > 1:
                # Counter.most_common: of the tied, the first inserted — the smallest id
                start = int(np.argmax(gram_ids == np.flatnonzero(counts == most)[0]))
                out[top] = int(gram_chars[start]) * most / total
            else:
                out[top] = 0.0
            continue
        seen: set[int] = set()
        dup_chars, next_start = 0, 0
        for i in np.flatnonzero(counts[gram_ids] > 1).tolist():
            if i < next_start:  # jumped over
                continue
            g = int(gram_ids[i])
            if g in seen:
                dup_chars += int(gram_chars[i])
                next_start = i + n
            else:
                seen.add(g)
                next_start = i + 1
        out[dup] = dup_chars / total
    return out


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
            py_texts = texts.to_pylist()
            signals: dict[str, np.ndarray] = line_word_signals(texts)
            reps = [repetition_signals(t, max_words) for t in py_texts]
            signals.update({c: np.array([r[c] for r in reps], dtype=np.float64) for c in REPETITION_COLUMNS})
            langs = detect_languages(py_texts, langid_backend)
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
