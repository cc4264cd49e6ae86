"""``quality_model`` config group (kept free of Spark ML imports: the configuration loads before any session)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mixlake.errors import ConfigError

SELECT_MODES = ("pareto", "threshold", "top_fraction", "none")


@dataclass
class QualityModelConfig:
    """``quality_model`` group (see :mod:`mixlake.quality.model`)."""

    enabled: bool = False
    positive_sources: list[str] = field(default_factory=lambda: ["wiki", "books"])
    negative_sources: list[str] = field(default_factory=lambda: ["web"])
    apply_to: list[str] | None = None  # sources scored and selected; null: the negative sources
    max_train_docs: int = 100_000  # per class, at most
    num_features: int = 1 << 20
    idf: bool = False
    reg_param: float = 0.01
    max_iter: int = 50
    holdout: float = 0.2
    seed: int = 42
    select: str = "pareto"  # pareto | threshold | top_fraction | none
    alpha: float = 9.0  # pareto shape (GPT-3: 9)
    threshold: float = 0.5  # threshold mode; also the operating point of the precision/recall report
    top_fraction: float = 0.5  # top_fraction mode: keep this fraction of each source
    path: str | None = None  # load this saved model instead of training

    def __post_init__(self) -> None:
        if self.select not in SELECT_MODES:
            raise ConfigError(f"quality_model.select must be one of {', '.join(SELECT_MODES)}, got {self.select!r}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"quality_model.holdout must be in (0, 1), got {self.holdout}")
        if not 0 < self.top_fraction <= 1:
            raise ConfigError(f"quality_model.top_fraction must be in (0, 1], got {self.top_fraction}")
        if self.alpha <= 0:
            raise ConfigError(f"quality_model.alpha must be > 0, got {self.alpha}")
        if self.enabled and self.path is None and (not self.positive_sources or not self.negative_sources):
            raise ConfigError("quality_model.positive_sources and negative_sources must both name sources")

    def targets(self) -> list[str]:
        return list(self.apply_to) if self.apply_to is not None else list(self.negative_sources)
