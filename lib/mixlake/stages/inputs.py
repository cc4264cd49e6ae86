"""Which table a downstream stage reads: the cleanest one the configured pipeline produces."""

from __future__ import annotations

from omegaconf import DictConfig

# stage -> the table it produces that later stages read instead of `documents`
CLEANED_BY = [("spans", "documents_clean"), ("dedup", "deduped"), ("quality", "quality_kept")]


def cleaned_input(cfg: DictConfig, requested: str = "auto") -> str:
    """``requested`` if not ``auto``; else the output of the latest cleaning stage in ``cfg.stages``, else
    ``documents`` (a disabled stage's stale table is never picked)."""
    if requested != "auto":
        return requested
    stages = list(cfg.get("stages") or [])
    for stage, table in CLEANED_BY:
        if stage in stages:
            return table
    return "documents"
