"""``decontam`` config group: the eval sets to protect and how matches are handled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mixlake.errors import ConfigError
from mixlake.text import NormalizeConfig

MODES = ("remove_spans", "drop_document")
EVAL_FORMATS = ("jsonl", "parquet", "csv")


@dataclass
class EvalSetConfig:
    """``decontam.evals.<task>``: one eval set, read from a file on the driver (eval sets are small)."""

    path: str = ""
    format: str = "jsonl"  # jsonl (also .gz) | parquet | csv
    fields: list[str] = field(default_factory=lambda: ["question", "answer"])  # texts checked (and their join)
    id_field: str | None = None  # null: the 0-based row number
    name: str = ""  # the task name (the key under decontam.evals)

    def __post_init__(self) -> None:
        key = f"decontam.evals.{self.name or '<task>'}"
        if not self.path:
            raise ConfigError(f"{key}.path is required")
        if self.format not in EVAL_FORMATS:
            raise ConfigError(f"{key}.format must be one of {', '.join(EVAL_FORMATS)}, got {self.format!r}")
        if not self.fields:
            raise ConfigError(f"{key}.fields must name at least one text field")


@dataclass
class DecontamConfig:
    """GPT-3 (Brown et al. 2020, appendix C) / NeMo Curator n-gram decontamination; see :mod:`mixlake.decontam`."""

    # task -> EvalSetConfig; typed per entry at compose time (add one with +decontam.evals.NAME.path=...)
    evals: dict[str, Any] = field(default_factory=dict)
    mode: str = "remove_spans"  # remove_spans (GPT-3/NeMo) | drop_document (datatrove/dolma)
    ngram: int = 13  # n of the word n-grams (GPT-3: 13)
    min_ngram: int = 8  # an eval text shorter than ngram words is matched as a whole down to this many words
    max_train_frequency: int = 10  # n-grams in more training documents than this are common: ignored (NeMo)
    margin_chars: int = 200  # remove_spans: characters cut on each side of a match
    min_fragment_chars: int = 200  # remove_spans: shorter fragments left over are dropped
    max_splits: int = 10  # remove_spans: a document split more often than this is dropped whole
    joined: bool = True  # also check the fields joined (question + answer), so n-grams across the seam count
    input_table: str = "auto"  # auto: the cleanest table the configured stages produce upstream
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)  # as dedup's (lowercase, punctuation, ...)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"decontam.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 1 <= self.min_ngram <= self.ngram:
            raise ConfigError(f"decontam.min_ngram must be in [1, decontam.ngram={self.ngram}], got {self.min_ngram}")
        for key in ("max_train_frequency", "max_splits"):
            if getattr(self, key) < 1:
                raise ConfigError(f"decontam.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("margin_chars", "min_fragment_chars"):
            if getattr(self, key) < 0:
                raise ConfigError(f"decontam.{key} must be >= 0, got {getattr(self, key)}")

    def eval_sets(self) -> list[EvalSetConfig]:
        """The eval sets by task name (typed and named at compose time, see ``mixlake.config.compose``)."""
        return [v for _, v in sorted(self.evals.items())]
