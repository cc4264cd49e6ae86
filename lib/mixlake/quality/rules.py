"""Keep decisions from quality signals: each rule is ``signal`` within ``[min, max]``; a document failing it gets
the rule's name in ``drop_reasons``. Rule sets are Hydra groups (``quality=[gopher,c4,fineweb]`` or ``none``) whose
thresholds can be overridden (``quality.rules.gopher_stop_words.min=1``) or removed (``~quality.rules.c4_policy``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mixlake.errors import ConfigError
from mixlake.quality.signals import SIGNAL_COLUMNS


@dataclass
class Rule:
    """``quality.rules.<name>``: keep a document when ``signal`` lies within ``[min, max]``."""

    signal: str
    min: float | None = None
    max: float | None = None


@dataclass
class QualityConfig:
    """``quality`` group (rule sets: ``quality=[gopher,c4,fineweb]``) and the settings at the root's ``quality``."""

    rules: dict[str, Rule] = field(default_factory=dict)
    languages: list[str] | None = None  # keep only these (ISO 639-1); null: any
    min_lang_score: float = 0.5  # with `languages`: also require this confidence
    langid: str = "langid"  # langid | lingua
    apply_to: list[str] | None = None  # sources the rules apply to; null: all (others are kept untouched)

    def __post_init__(self) -> None:
        for name, rule in self.rules.items():
            if rule.signal not in SIGNAL_COLUMNS:
                raise ConfigError(f"config key 'quality.rules.{name}.signal': unknown signal {rule.signal!r}; "
                                  f"known: {', '.join(SIGNAL_COLUMNS)}")
            if rule.min is None and rule.max is None:
                raise ConfigError(f"config key 'quality.rules.{name}' needs min and/or max")
        if self.langid not in ("langid", "lingua"):
            raise ConfigError("config key 'quality.langid' must be langid or lingua")


def _fails(rule: Rule) -> Column:
    c = F.col(rule.signal)
    cond = F.lit(False)
    if rule.min is not None:
        cond = cond | (c < F.lit(rule.min))
    if rule.max is not None:
        cond = cond | (c > F.lit(rule.max))
    return cond


def quality_score(qc: QualityConfig) -> Column:
    """A document's ``quality_score`` in [0, 1] — what dedup's keep rule prefers among a cluster's members from
    sources of equal priority (higher is kept). The mean of four parts, each in [0, 1]:

    1. the fraction of the configured rules the document passes (computed for exempt sources too);
    2. the fraction of its lines that end in terminal punctuation (C4/FineWeb: prose, not menus);
    3. one minus the fraction of its characters in duplicated lines (Gopher: not boilerplate);
    4. the language identifier's confidence (``lang_score``).

    A heuristic, not a model: it ranks an article above its navigation-heavy or boilerplate-ridden copy. Rounded to
    six decimals so the keep rule's ties are exact.
    """
    rules = sorted(qc.rules.items())
    passed = (sum((~_fails(r)).cast("double") for _, r in rules) / F.lit(float(len(rules)))) if rules else F.lit(1.0)

    def unit(c: Column) -> Column:
        return F.least(F.greatest(F.coalesce(c.cast("double"), F.lit(0.0)), F.lit(0.0)), F.lit(1.0))

    parts = [unit(passed), unit(F.col("frac_lines_terminal_punct")), unit(1.0 - F.col("frac_dup_line_chars")),
             unit(F.col("lang_score"))]
    return F.round(sum(parts) / F.lit(4.0), 6)


def apply_rules(signals: DataFrame, qc: QualityConfig) -> DataFrame:
    """Adds ``drop_reasons`` (sorted rule names; ``language`` for the language filter), ``keep`` and
    ``quality_score`` (:func:`quality_score`)."""
    reasons = [F.when(_fails(r), F.lit(name)) for name, r in sorted(qc.rules.items())]
    if qc.languages:
        lang_ok = F.col("lang").isin(list(qc.languages)) & (F.col("lang_score") >= F.lit(qc.min_lang_score))
        reasons.append(F.when(~lang_ok, F.lit("language")))
    arr = F.filter(F.array(*reasons), lambda x: x.isNotNull()) if reasons else F.array().cast("array<string>")
    if qc.apply_to is not None:
        arr = F.when(F.col("source").isin(list(qc.apply_to)), arr).otherwise(F.array().cast("array<string>"))
    return (signals.withColumn("drop_reasons", arr).withColumn("keep", F.size("drop_reasons") == 0)
            .withColumn("quality_score", quality_score(qc)))
