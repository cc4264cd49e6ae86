"""llm-foundry ``train_loader.dataset.streams`` config from a plan.

MosaicML Streaming's stream weights count **samples**, not tokens. With fixed-length token blocks (MDS format
``tokens``: every sample is ``max_seq_len`` tokens) sample weights equal token weights, so each stream gets the
plan's ``proportion`` and the dataset's ``epoch_size`` is the budget in samples (budget tokens / max_seq_len). With
variable-length text samples (format ``text``) proportions would be wrong by each source's mean document length, so
each stream gets an absolute ``choose`` in samples: planned tokens / mean tokens per document of that source.
"""

from __future__ import annotations

from typing import Any

from mixlake.mixture.plan import Plan


def streams_config(plan: Plan, mds_root: str, local_cache: str, remote_root: str | None, sample_format: str,
                   max_seq_len: int, tokens_per_doc: dict[str, float], stratified: bool = False) -> dict[str, Any]:
    streams: dict[str, Any] = {}
    for r in plan.rows:
        s: dict[str, Any] = {
            "remote": f"{remote_root.rstrip('/')}/{r.source}" if remote_root else None,
            "local": f"{local_cache.rstrip('/')}/{r.source}" if remote_root else f"{mds_root.rstrip('/')}/{r.source}",
        }
        if s["remote"] is None:
            del s["remote"]
        if sample_format == "tokens":
            s["proportion"] = round(r.proportion, 8)
        else:
            s["choose"] = max(1, round(r.tokens / max(tokens_per_doc.get(r.source, 1.0), 1.0)))
        streams[r.source] = s
    dataset: dict[str, Any] = {"streams": streams, "shuffle": True, "max_seq_len": max_seq_len}
    if sample_format == "tokens":
        dataset["epoch_size"] = max(1, round(plan.budget_tokens / max_seq_len))
    if stratified:
        dataset["batching_method"] = "stratified"
    return {"train_loader": {"name": "text", "dataset": dataset, "drop_last": True}}
