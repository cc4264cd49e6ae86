"""Semantic deduplication (SemDeDup) on Spark: embeddings, k-means, the within-cluster eps rule, evaluation."""
