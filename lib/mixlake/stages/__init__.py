"""Stage wiring: config → read tables → call the library → write tables. One module per stage.

Each stage module exposes ``run(spark, cfg) -> StageResult``; :data:`STAGES` maps stage names (as used in the
``stages`` config list and by ``jobs/<stage>.py``) to them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mixlake.errors import ConfigError
from mixlake.stages.result import StageResult

STAGE_MODULES = {
    "sample": "mixlake.stages.sample",
    "ingest": "mixlake.stages.ingest",
    "quality": "mixlake.stages.quality",
    "dedup": "mixlake.stages.dedup",
    "eval_dedup": "mixlake.stages.eval_dedup",
    "semdedup": "mixlake.stages.semdedup",
    "eval_semdedup": "mixlake.stages.eval_semdedup",
    "spans": "mixlake.stages.spans",
    "decontam": "mixlake.stages.decontam",
    "tokens": "mixlake.stages.tokens",
    "mix": "mixlake.stages.mix",
    "write_mds": "mixlake.stages.write_mds",
    "verify_mds": "mixlake.stages.verify_mds",
    "report": "mixlake.stages.report",
}


STAGE_DESCRIPTIONS = {
    "sample": "write the built-in synthetic corpus (files + ground truth) under sample.dir",
    "ingest": "sources (JSONL, Parquet, text, WARC/WET) -> documents, quarantine, ingest_files",
    "quality": "Gopher/C4/FineWeb signals, language, keep rules, quality_score -> quality, quality_kept",
    "dedup": "exact + MinHash-LSH near-duplicates, connected components, keep rule -> duplicates, deduped",
    "eval_dedup": "precision/recall of dedup against a gold file (default: the sample's ground truth)",
    "semdedup": "semantic duplicates (SemDeDup: embeddings, k-means, cosine >= 1 - eps) -> semdeduped, "
                "semantic_duplicates, semdedup_sweep",
    "eval_semdedup": "recall/cross-page merges of each embedder on real pages extracted twice (semdedup.eval_pages)",
    "spans": "remove spans repeated across the corpus -> spans, documents_clean",
    "decontam": "remove eval-set n-grams (GPT-3 13-grams) -> documents_decontaminated, contamination, eval_clean/",
    "tokens": "tokenize once: ids and counts per document, totals per source -> token_ids, token_counts, token_summary",
    "mix": "plan the mixture (Chinchilla budget, strategy, epoch cap) -> mixture, streams.yaml",
    "write_mds": "MosaicML Streaming MDS shards per source -> mds/<source>/, mds_manifest",
    "verify_mds": "read every stream back with streaming.StreamingDataset; check counts and shard hashes",
    "report": "the HTML/Markdown report of every stage's tables",
}


def stage_validator(name: str) -> Callable[[Any], None]:
    """The stage's config check (fails fast naming the key), or a no-op."""
    stage_runner(name)
    return getattr(importlib.import_module(STAGE_MODULES[name]), "validate", lambda cfg: None)  # type: ignore[no-any-return]


def stage_runner(name: str) -> Callable[[Any, Any], StageResult]:
    if name not in STAGE_MODULES:
        raise ConfigError(f"config key 'stages' names unknown stage {name!r}; known: {', '.join(STAGE_MODULES)}")
    return importlib.import_module(STAGE_MODULES[name]).run  # type: ignore[no-any-return]
