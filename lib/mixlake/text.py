"""Text normalisation and shingling shared by the sample's ground truth and the dedup stage.

The default normalisation follows datatrove's MinHash dedup (``simplify_text``: lowercase, strip punctuation,
digits → 0, collapse whitespace) plus Unicode NFKC; the stored ``text`` is never altered by it. Whitespace is always
collapsed (texts are compared as word sequences).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_DIGIT = re.compile(r"\d", re.UNICODE)

# Scripts written without spaces between words: Han (CJK ideographs), Hiragana, Katakana, Thai, Lao, Tibetan,
# Myanmar, Khmer. In them a whitespace "word" is a whole clause or paragraph, so each of their characters is made a
# token of its own and n-grams of tokens become character n-grams (Hangul is written with spaces: not listed).
# One list feeds both the RE2 pattern (Arrow, the MinHash hot path) and the Python reference, so they agree.
UNSPACED_RANGES = [
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B),  # ideographic iteration marks and numerals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x20000, 0x2FA1F),  # CJK extensions B-F, compatibility supplement
]
UNSPACED_RE2 = "([" + "".join(f"\\x{{{a:04X}}}-\\x{{{b:04X}}}" for a, b in UNSPACED_RANGES) + "])"
# Python's \s and str.isspace (= Arrow's utf8_is_space / utf8_split_whitespace, checked over every code point) as an
# RE2 character class
PY_WS = "[" + "".join(f"\\x{{{c:x}}}" for c in range(0x110000) if chr(c).isspace()) + "]"
_UNSPACED = re.compile("([" + "".join(f"{chr(a)}-{chr(b)}" for a, b in UNSPACED_RANGES) + "])")


@cache
def py_not_alnum_re2() -> str:
    """An RE2 class of every code point that is not ``str.isalnum()`` (by this Python's Unicode tables; ``_`` too).

    ``normalize`` maps ``[^\\w\\s]|_`` to a space and then splits on whitespace; RE2's ``\\pL``/``\\pN`` follow a newer
    Unicode version than Python's ``unicodedata``, so code that must give :func:`normalize`'s exact bytes (the span
    hashes) replaces this class instead: 733 ranges, built once per process (~0.3 s).
    """
    ranges: list[tuple[int, int]] = []
    for c in range(0x110000):
        if chr(c).isalnum():
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1] = (ranges[-1][0], c)
            else:
                ranges.append((c, c))
    return "[^" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" if a != b else f"\\x{{{a:x}}}" for a, b in ranges) + "]"


@dataclass
class NormalizeConfig:
    """``dedup.normalize`` group."""

    lowercase: bool = True
    nfkc: bool = True
    strip_punctuation: bool = True
    digits_to_zero: bool = True


DEFAULT_NORMALIZE = NormalizeConfig()


def normalize_word(word: str, cfg: NormalizeConfig | None = None) -> str:
    """Per-word part of the normalisation (applied to each distinct word once per batch by the MinHash UDF)."""
    cfg = cfg or DEFAULT_NORMALIZE
    if cfg.nfkc:
        word = unicodedata.normalize("NFKC", word)
    if cfg.lowercase:
        word = word.lower()
    if cfg.digits_to_zero:
        word = _DIGIT.sub("0", word)
    return word


def normalize(text: str, cfg: NormalizeConfig | None = None) -> str:
    """Reference normalisation: punctuation (anything but letters, numbers, whitespace; and ``_``) → space, every
    character of an unspaced script (:data:`UNSPACED_RANGES`) made a word of its own, split on whitespace, then per
    word NFKC, lowercase, digits → 0; words joined by single spaces.

    The MinHash UDF computes exactly this in two parts (Arrow regex + split over the batch, then
    :func:`normalize_word` per distinct word); tests check the two agree.
    """
    cfg = cfg or DEFAULT_NORMALIZE
    if cfg.strip_punctuation:
        text = _PUNCT.sub(" ", text)
    text = _UNSPACED.sub(r" \1 ", text)
    return " ".join(normalize_word(w, cfg) for w in text.split())


class CachedNormalizer:
    """:func:`normalize` with the per-word part memoised: natural text repeats a small vocabulary, so a batch of
    documents normalises each distinct word once (NFKC + lowercase + digit mapping is most of the cost), and an
    ASCII text is mapped as a whole. The result is identical to :func:`normalize` (tested); the cache is bounded
    (cleared when it passes ``max_words``)."""

    def __init__(self, cfg: NormalizeConfig | None = None, max_words: int = 200_000) -> None:
        self.cfg = cfg or DEFAULT_NORMALIZE
        self.max_words = max_words
        self.words: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if self.cfg.strip_punctuation:
            text = _PUNCT.sub(" ", text)
        if text.isascii():  # NFKC is the identity on ASCII and no ASCII character is unspaced: whole-string ops
            if self.cfg.lowercase:
                text = text.lower()
            if self.cfg.digits_to_zero:
                text = _DIGIT.sub("0", text)
            return " ".join(text.split())
        text = _UNSPACED.sub(r" \1 ", text)
        words = self.words
        if len(words) > self.max_words:
            words.clear()
        out = []
        for w in text.split():
            n = words.get(w)
            if n is None:
                n = words[w] = normalize_word(w, self.cfg)
            out.append(n)
        return " ".join(out)


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
