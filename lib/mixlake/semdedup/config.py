"""``semdedup`` config group (kept free of Spark imports: the configuration loads before any session)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mixlake.errors import ConfigError

EMBEDDERS = ("wordllama", "word2vec", "lsa")


@dataclass
class SemDedupConfig:
    """Semantic deduplication, SemDeDup (Abbas et al. 2023) on CPUs (see :mod:`mixlake.semdedup.semdedup`)."""

    input_table: str = "auto"  # auto: the last cleaning stage configured before semdedup (deduped after dedup)
    embedder: str = "lsa"  # lsa | wordllama | word2vec (the default chosen by eval_semdedup: README)
    max_chars: int = 50_000  # a longer document is embedded on its first max_chars characters
    center: bool = True  # subtract the corpus mean embedding (fit sample) before cosine: removes the shared direction
    fit_sample: int = 50_000  # documents (smallest seeded hash of doc_id) that fit k-means, word2vec/lsa, the mean
    seed: int = 42
    # clustering: k = ceil(documents / docs_per_cluster) unless k is set; MLlib KMeans, cosine distance
    k: int | None = None
    docs_per_cluster: int = 1000
    kmeans_max_iter: int = 20
    max_cluster_size: int = 5000  # larger clusters are split further (seeded hyperplanes through their mean)
    split_rounds: int = 6  # rounds of splitting; still-oversized clusters are then cut in keep-rule order
    # a document is a semantic duplicate when its cosine to an earlier-ranked member of its cluster is >= 1 - eps
    eps: float = 0.1
    eps_sweep: list[float] = field(default_factory=lambda: [0.005, 0.01, 0.02, 0.05, 0.1])
    block_rows: int = 1024  # rows per block of the within-cluster cosine matrix (memory: cluster x block floats)
    # word2vec (Spark MLlib Word2Vec fitted on the fit sample; a document = the mean of its word vectors)
    w2v_dim: int = 128
    w2v_min_count: int = 2
    w2v_max_iter: int = 1
    # lsa (hashed TF-IDF -> PCA, MLlib, fitted on the fit sample)
    lsa_features: int = 1024
    lsa_dim: int = 128
    # eval_semdedup: real pages, each extracted twice (resiliparse and trafilatura); null: the stage is skipped
    eval_pages: str | None = None
    eval_embedders: list[str] = field(default_factory=lambda: list(EMBEDDERS))
    eval_min_words: int = 20  # pages whose shorter extraction has fewer words are left out

    def __post_init__(self) -> None:
        for key in ("embedder",):
            if getattr(self, key) not in EMBEDDERS:
                raise ConfigError(f"config key 'semdedup.{key}' must be one of {', '.join(EMBEDDERS)}, "
                                  f"got {getattr(self, key)!r}")
        for e in self.eval_embedders:
            if e not in EMBEDDERS:
                raise ConfigError(f"config key 'semdedup.eval_embedders' names unknown embedder {e!r}; "
                                  f"known: {', '.join(EMBEDDERS)}")
        for key in ("max_chars", "fit_sample", "docs_per_cluster", "kmeans_max_iter", "max_cluster_size",
                    "block_rows", "w2v_dim", "w2v_min_count", "w2v_max_iter", "lsa_features",
                    "lsa_dim", "split_rounds"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key 'semdedup.{key}' must be >= 1, got {getattr(self, key)}")
        if self.k is not None and self.k < 1:
            raise ConfigError(f"config key 'semdedup.k' must be >= 1 or null, got {self.k}")
        if self.lsa_dim > self.lsa_features:
            raise ConfigError("config key 'semdedup.lsa_dim' must be <= semdedup.lsa_features")
        for e in [self.eps, *self.eps_sweep]:
            if not 0 < e < 1:
                raise ConfigError(f"config keys 'semdedup.eps' and 'semdedup.eps_sweep' must be in (0, 1), got {e}")

    def sweep(self) -> list[float]:
        """The eps values reported (the sweep plus the configured eps), ascending."""
        return sorted({*self.eps_sweep, self.eps})
