"""Offline language identification, loaded once per Python worker.

Default ``lingua`` (lingua-language-detector: Rust, n-gram models inside the wheel; accurate on short and mixed
text); ``langid`` (langid.py, Lui & Baldwin 2012, model inside the package) selectable. ``bench/langid_bench.py``
measures both on real pages labelled by their ``<html lang>``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=2)
def _lingua() -> Any:
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()


@lru_cache(maxsize=2)
def _langid() -> Any:
    from langid.langid import LanguageIdentifier, model

    return LanguageIdentifier.from_modelstring(model, norm_probs=True)


def detect_languages(texts: list[str], backend: str = "lingua", max_chars: int = 2000) -> list[tuple[str, float]]:
    """(ISO 639-1 code or ``und``, confidence in [0, 1]) per text; only the first ``max_chars`` are looked at."""
    clipped = [(t or "")[:max_chars] for t in texts]
    if backend == "langid":
        ident = _langid()
        out = []
        for t in clipped:
            if not t.strip():
                out.append(("und", 0.0))
                continue
            lang, p = ident.classify(t)
            out.append((lang, float(p)))
        return out
    if backend != "lingua":
        raise ValueError(f"unknown language-id backend {backend!r}")
    det = _lingua()
    results = det.compute_language_confidence_values_in_parallel(clipped) \
        if hasattr(det, "compute_language_confidence_values_in_parallel") else \
        [det.compute_language_confidence_values(t) for t in clipped]
    out = []
    for t, conf in zip(clipped, results, strict=True):
        if not t.strip() or not conf:
            out.append(("und", 0.0))
            continue
        best = conf[0]
        out.append((best.language.iso_code_639_1.name.lower(), float(best.value)))
    return out
