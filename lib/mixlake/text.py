"""Text normalisation and shingling shared by the sample's ground truth and the dedup stage.

The default normalisation follows datatrove's MinHash dedup (``simplify_text``: lowercase, strip punctuation,
digits → 0, collapse whitespace) plus Unicode NFKC; the stored ``text`` is never altered by it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_DIGIT = re.compile(r"\d", re.UNICODE)
_WS = re.compile(r"\s+", re.UNICODE)


@dataclass(frozen=True)
class NormalizeConfig:
    """``dedup.normalize`` group."""

    lowercase: bool = True
    nfkc: bool = True
    strip_punctuation: bool = True
    digits_to_zero: bool = True
    collapse_whitespace: bool = True


def normalize(text: str, cfg: NormalizeConfig = NormalizeConfig()) -> str:
    if cfg.nfkc:
        text = unicodedata.normalize("NFKC", text)
    if cfg.lowercase:
        text = text.lower()
    if cfg.strip_punctuation:
        text = _PUNCT.sub(" ", text)
    if cfg.digits_to_zero:
        text = _DIGIT.sub("0", text)
    if cfg.collapse_whitespace:
        text = _WS.sub(" ", text).strip()
    return text


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
