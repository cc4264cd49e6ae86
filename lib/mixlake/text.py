"""Text normalisation and shingling shared by the sample's ground truth and the dedup stage.

The default normalisation follows datatrove's MinHash dedup (``simplify_text``: lowercase, strip punctuation,
digits → 0, collapse whitespace) plus Unicode NFKC; the stored ``text`` is never altered by it. Whitespace is always
collapsed (texts are compared as word sequences).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_DIGIT = re.compile(r"\d", re.UNICODE)


@dataclass(frozen=True)
class NormalizeConfig:
    """``dedup.normalize`` group."""

    lowercase: bool = True
    nfkc: bool = True
    strip_punctuation: bool = True
    digits_to_zero: bool = True


def normalize_word(word: str, cfg: NormalizeConfig = NormalizeConfig()) -> str:
    """Per-word part of the normalisation (applied to each distinct word once per batch by the MinHash UDF)."""
    if cfg.nfkc:
        word = unicodedata.normalize("NFKC", word)
    if cfg.lowercase:
        word = word.lower()
    if cfg.digits_to_zero:
        word = _DIGIT.sub("0", word)
    return word


def normalize(text: str, cfg: NormalizeConfig = NormalizeConfig()) -> str:
    """Reference normalisation: punctuation (anything but letters, numbers, whitespace; and ``_``) → space, split on
    whitespace, then per word NFKC, lowercase, digits → 0; words joined by single spaces.

    The MinHash UDF computes exactly this in two parts (Arrow regex + split over the batch, then
    :func:`normalize_word` per distinct word); tests check the two agree.
    """
    if cfg.strip_punctuation:
        text = _PUNCT.sub(" ", text)
    return " ".join(normalize_word(w, cfg) for w in text.split())


def word_shingles(normalized: str, n: int = 5) -> set[str]:
    """Word n-grams of an already normalised text; a text shorter than n words yields one shingle (itself)."""
    words = normalized.split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
