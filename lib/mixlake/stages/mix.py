"""Stage ``mix``: plan the mixture from ``token_summary`` → Delta ``mixture`` (every plan of the ladder),
``${lake}/report/mixture.md`` + ``mixture.json``, and ``${lake}/streams.yaml`` (llm-foundry ``streams:``)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

import yaml
from pyspark.sql import SparkSession

from mixlake import storage
from mixlake.config import MixlakeConfig
from mixlake.delta import lake_root, read_table, replace_table, table_path, table_version
from mixlake.errors import ConfigError
from mixlake.mixture.plan import Plan, budget, plan_ladder, plan_markdown
from mixlake.mixture.streams import streams_config
from mixlake.stages.result import StageResult

log = logging.getLogger(__name__)


def validate(cfg: MixlakeConfig) -> None:
    budget(cfg.mixture)  # exactly one of model.params / budget.flops / budget.tokens (or the sample's demo budget)


def _f(x: float | None) -> float | None:
    return None if x is None else float(x)


def plan_rows(plans: list[Plan]) -> list[dict[str, Any]]:
    rows = []
    for i, p in enumerate(plans):
        for r in p.rows:
            rows.append({"plan": i, "model_params": _f(p.model_params), "budget_tokens": float(p.budget_tokens),
                         "budget_flops": _f(p.budget_flops), "strategy": p.strategy, "max_epochs": _f(p.max_epochs),
                         "source": r.source, "unique_tokens": float(r.unique_tokens), "proportion": r.proportion,
                         "tokens": r.tokens, "epochs": r.epochs, "effective_tokens": r.effective_tokens,
                         "flags": r.flags, "notes": p.notes})
    return rows


def run(spark: SparkSession, cfg: MixlakeConfig) -> StageResult:
    m = cfg.mixture
    if cfg.sample.enabled and cfg.model.params is None and cfg.budget.flops is None and cfg.budget.tokens is None:
        log.info("no budget set: planning the sample's demo budget of %g tokens (set model.params=..., "
                 "budget.flops=... or budget.tokens=...)", m.budget_tokens)
    if m.max_epochs is not None and m.max_epochs > 16:
        log.warning("mixture.max_epochs=%g: beyond ~16 epochs repeated data is worth almost nothing "
                    "(Muennighoff et al. 2023)", m.max_epochs)
    summary = read_table(spark, cfg.lake, "token_summary").collect()
    unique = {r.source: float(r.tokens) for r in summary}
    per_doc = {r.source: float(r.tokens_per_doc) for r in summary}
    plans = plan_ladder(unique, m)
    replace_table(spark.createDataFrame(plan_rows(plans), "plan int, model_params double, budget_tokens double, "
                                        "budget_flops double, strategy string, max_epochs double, source string, "
                                        "unique_tokens double, proportion double, tokens double, epochs double, "
                                        "effective_tokens double, flags array<string>, notes array<string>"),
                  table_path(cfg.lake, "mixture"))
    root = lake_root(cfg.lake)
    md = "\n".join(f"## Plan {i}\n\n{plan_markdown(p)}" for i, p in enumerate(plans))
    mds = cfg.mds
    assert mds.root is not None  # set at compose time
    streams = streams_config(plans[0], mds.root, mds.local_cache, mds.remote, mds.format, mds.max_seq_len, per_doc,
                             mds.stratified)
    s3 = cfg.s3
    storage.write_text(f"{root}/report/mixture.md", md, s3)
    storage.write_text(f"{root}/report/mixture.json", json.dumps([asdict(p) for p in plans], indent=1), s3)
    storage.write_text(f"{root}/streams.yaml", "# llm-foundry train_loader for the main plan (written by mixlake's "
                       "mix stage)\n" + yaml.safe_dump(streams, sort_keys=False), s3)
    print(md, flush=True)
    for note in plans[0].notes:
        log.info("mixture: %s", note)
    if not plans[0].rows:
        raise ConfigError("empty plan")
    return StageResult("mix", outputs={"mixture": table_version(spark, table_path(cfg.lake, "mixture"))},
                       details={"plans": len(plans), "budget_tokens": plans[0].budget_tokens,
                                "notes": plans[0].notes})
