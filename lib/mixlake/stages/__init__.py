"""Stage wiring: config → read tables → call the library → write tables. One module per stage.

Each stage module exposes ``run(spark, cfg) -> StageResult``; :data:`STAGES` maps stage names (as used in the
``stages`` config list and by ``jobs/<stage>.py``) to them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mixlake.stages.result import StageResult

STAGE_MODULES = {
    "sample": "mixlake.stages.sample",
    "ingest": "mixlake.stages.ingest",
    "quality": "mixlake.stages.quality",
    "dedup": "mixlake.stages.dedup",
    "eval_dedup": "mixlake.stages.eval_dedup",
    "spans": "mixlake.stages.spans",
    "tokens": "mixlake.stages.tokens",
    "mix": "mixlake.stages.mix",
    "write_mds": "mixlake.stages.write_mds",
    "verify_mds": "mixlake.stages.verify_mds",
    "report": "mixlake.stages.report",
}


def stage_validator(name: str) -> Callable[[Any], None]:
    """The stage's config check (fails fast naming the key), or a no-op."""
    stage_runner(name)
    return getattr(importlib.import_module(STAGE_MODULES[name]), "validate", lambda cfg: None)  # type: ignore[no-any-return]


def stage_runner(name: str) -> Callable[[Any, Any], StageResult]:
    from mixlake.config import ConfigError

    if name not in STAGE_MODULES:
        raise ConfigError(f"config key 'stages' names unknown stage {name!r}; known: {', '.join(STAGE_MODULES)}")
    return importlib.import_module(STAGE_MODULES[name]).run  # type: ignore[no-any-return]
