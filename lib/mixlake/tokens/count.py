"""Token counting: ``(doc_id, source, text)`` → ``(doc_id, source, n_tokens, n_bytes)``, distributed.

The tokenizer is loaded once per Python worker (cached) and texts are encoded in batches with the Rust
``encode_batch``. Counts exclude BOS/EOS (the MDS writer adds those when it packs).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mixlake.tokens.tokenizer import TokenizerConfig, load_tokenizer

TOKEN_COUNT_DDL = "doc_id string, source string, n_tokens bigint, n_bytes bigint"


def token_counts(docs: DataFrame, cfg: TokenizerConfig) -> DataFrame:
    batch = cfg.batch_size

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tok = load_tokenizer(cfg)
        for b in batches:
            texts = b.column("text").to_pylist()
            counts = np.empty(len(texts), dtype=np.int64)
            for s in range(0, len(texts), batch):
                enc = tok.encode_batch([t or "" for t in texts[s:s + batch]], add_special_tokens=False)
                counts[s:s + batch] = [len(e.ids) for e in enc]
            n_bytes = np.array([len(t.encode("utf-8")) if t else 0 for t in texts], dtype=np.int64)
            yield pa.RecordBatch.from_arrays([b.column("doc_id"), b.column("source"), pa.array(counts),
                                              pa.array(n_bytes)], names=["doc_id", "source", "n_tokens", "n_bytes"])

    return docs.select("doc_id", "source", "text").mapInArrow(run, TOKEN_COUNT_DDL)


def source_summary(counts: DataFrame) -> DataFrame:
    """Per source: documents, tokens, bytes, mean tokens per document, bytes per token."""
    return (counts.groupBy("source")
            .agg(F.count(F.lit(1)).alias("documents"), F.sum("n_tokens").alias("tokens"),
                 F.sum("n_bytes").alias("bytes"))
            .withColumn("tokens_per_doc", F.col("tokens") / F.col("documents"))
            .withColumn("bytes_per_token", F.col("bytes") / F.greatest(F.col("tokens"), F.lit(1)))
            .orderBy("source"))
