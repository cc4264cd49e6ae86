"""Which table a stage reads: the cleanest one the configured pipeline produces upstream of it."""

from __future__ import annotations

from mixlake.config import MixlakeConfig

# pipeline order of the cleaning stages and the table each produces for the stages after it
CLEANING = [("quality", "quality_kept"), ("dedup", "deduped"), ("semdedup", "semdeduped"),
            ("spans", "documents_clean"), ("decontam", "documents_decontaminated")]


def cleaned_input(cfg: MixlakeConfig, requested: str = "auto", stage: str | None = None) -> str:
    """``requested`` unless ``auto``; else the output of the last cleaning stage in ``cfg.stages`` that runs before
    ``stage`` (all of them for a stage after the cleaning ones), else ``documents``. A stage that is not configured
    is never read from, even if a stale table of it exists."""
    if requested != "auto":
        return requested
    stages = list(cfg.stages)
    order = [name for name, _ in CLEANING]
    upstream = order[: order.index(stage)] if stage in order else order
    for name, table in reversed(CLEANING):
        if name in upstream and name in stages:
            return table
    return "documents"
