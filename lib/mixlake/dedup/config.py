"""``dedup`` config group and the LSH S-curve arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field

from mixlake.errors import ConfigError
from mixlake.text import NormalizeConfig


@dataclass
class DedupConfig:
    """Exact + MinHash-LSH near-duplicate removal (see :mod:`mixlake.dedup.dedup`)."""

    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    ngram: int = 5  # word n-gram shingles
    bands: int = 20  # b; 20 x 6 catches 99.8% of pairs at J = 0.8 (14 x 8: 92%)
    rows: int = 6  # r; k = b * r permutations
    target_threshold: float | None = None  # if set: derive b x r from the S-curve with k <= num_perm
    num_perm: int = 112  # budget used when deriving b x r
    threshold: float = 0.8  # verification: keep candidate edges with Jaccard >= threshold
    # exact (shingle-set Jaccard) | signature (estimated: s.e. ~0.04 at J = 0.8, so it rejects about half the true
    # pairs just above the threshold) | none
    verify: str = "exact"
    bucket_all_pairs_max: int = 64  # LSH buckets up to this size: every pair verified; larger: star + re-rooting
    reroot_rounds: int = 3  # hot buckets: members rejected by the root are re-starred around their minimum
    min_shingles: int = 5  # fewer shingles: no MinHash, exact dedup only (short texts collapse otherwise)
    seed: int = 42
    scope: str = "global"  # global | source
    source_priority: list[str] = field(default_factory=list)  # keep-rule order; empty: sources.*.priority
    cc_max_iterations: int = 40
    input_table: str = "auto"  # auto: quality_kept when the quality stage is configured, else documents

    def __post_init__(self) -> None:
        if self.verify not in ("signature", "exact", "none"):
            raise ConfigError(f"config key 'dedup.verify' must be signature|exact|none, got {self.verify!r}")
        if self.scope not in ("global", "source"):
            raise ConfigError(f"config key 'dedup.scope' must be global|source, got {self.scope!r}")
        if self.ngram < 1:
            raise ConfigError("config key 'dedup.ngram' must be >= 1")
        if self.bands < 1 or self.rows < 1:
            raise ConfigError("config keys 'dedup.bands' and 'dedup.rows' must be >= 1")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError("config key 'dedup.threshold' must be in (0, 1]")
        if self.bucket_all_pairs_max < 1 or self.reroot_rounds < 0:
            raise ConfigError("config keys 'dedup.bucket_all_pairs_max' (>= 1) and 'dedup.reroot_rounds' (>= 0)")
        if self.target_threshold is not None:
            derive_bands_rows(self.target_threshold, self.num_perm)  # fails now, naming the key, if impossible

    def band_rows(self) -> tuple[int, int]:
        """(b, r): as configured, or derived from ``target_threshold`` and ``num_perm``."""
        if self.target_threshold is None:
            return self.bands, self.rows
        return derive_bands_rows(self.target_threshold, self.num_perm)

    @property
    def num_hashes(self) -> int:
        b, r = self.band_rows()
        return b * r


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """P(a pair with Jaccard s shares at least one band) = 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - s**rows) ** bands


def derive_bands_rows(threshold: float, num_perm: int, min_recall: float = 0.9) -> tuple[int, int]:
    """Pick b x r <= num_perm whose S-curve catches >= ``min_recall`` of pairs at ``threshold`` while producing the
    fewest candidates below it (smallest area under the curve on [0, threshold]).

    Not datasketch's ``optimal_param``: that balances false positives and negatives equally and, for t = 0.8 and 128
    permutations, picks 9 x 13, which catches only ~40% of pairs at s = 0.8. Verification removes false positives,
    so recall at the threshold is what must not be lost.
    """
    best: tuple[float, int, int] | None = None
    steps = 200
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if b < 1:
            break
        if candidate_probability(threshold, b, r) < min_recall:
            continue
        area = sum(candidate_probability(threshold * i / steps, b, r) for i in range(steps)) * threshold / steps
        if best is None or area < best[0]:
            best = (area, b, r)
    if best is None:
        raise ConfigError(
            f"config keys 'dedup.target_threshold'={threshold} and 'dedup.num_perm'={num_perm}: no b x r <= "
            f"{num_perm} catches {min_recall:.0%} of pairs at the threshold; raise dedup.num_perm or set "
            "dedup.bands and dedup.rows")
    return best[1], best[2]
