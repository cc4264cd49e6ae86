"""Document embeddings for semantic dedup, computed offline on the executors.

Three embedders, compared by ``eval_semdedup`` (the closing note of issue 17 has the table):

* ``wordllama`` (default) — WordLlama's ``l2_supercat`` static token embeddings (Miller 2024,
  github.com/dleemiller/WordLlama; the package is MIT, the 32,000 x 256 matrix was trained from the token-embedding
  codebooks of LLaMA 2 70B and other LLaMA-2-tokenizer models, so its use may also fall under those models' licence
  terms). The matrix and the tokenizer ship inside the PyPI wheel; they are read from the installed package's files
  with ``safetensors`` and ``tokenizers`` (``WordLlama.load()`` 0.4.0 looks for the tokenizer in a ``tokenizer/``
  folder while the wheel ships ``tokenizers/``, and then tries to download it from the Hugging Face hub — which
  this pipeline must never do). A document is the mean of its tokens' vectors, as ``WordLlamaInference.embed``
  computes it, but as a sparse token-count matrix times the embedding matrix (no padded batch x tokens x 256
  tensor: 7x faster on long pages).
* ``word2vec`` — Spark MLlib ``Word2Vec`` fitted on the fit sample of the corpus itself; a document is the mean of
  its words' vectors (MLlib's ``Word2VecModel.transform``).
* ``lsa`` — latent semantic analysis: hashed TF-IDF reduced by MLlib ``PCA`` fitted on the fit sample.

Every embedding is L2-normalised and stored as ``array<float>``; a document with no token gets the zero vector (it
is never anyone's duplicate). The fitted embedders fit on one partition (the fit sample, at most ``fit_sample``
rows), so a refit on the same data gives the same model.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mixlake.semdedup.config import SemDedupConfig

# letters and digits, as the quality model and dedup's normalisation split words ((?U): Unicode \W in Java)
TOKEN_PATTERN = r"(?U)[^\W_]+"
WORDLLAMA_WEIGHTS = "weights/l2_supercat_256.safetensors"
WORDLLAMA_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
EMBEDDING_SCHEMA = "doc_id string, embedding array<float>"


@functools.lru_cache(maxsize=1)
def wordllama_model() -> tuple[np.ndarray, Any]:
    """(embedding matrix float32 [vocab, 256], tokenizer) from the installed ``wordllama`` package's own files,
    loaded once per Python worker."""
    import wordllama
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    root = Path(wordllama.__file__).parent
    for rel in (WORDLLAMA_WEIGHTS, WORDLLAMA_TOKENIZER):
        if not (root / rel).is_file():
            raise FileNotFoundError(f"the installed wordllama package has no {rel} (expected wordllama==0.4.0.post1 "
                                    f"from PyPI; run make setup)")
    matrix = np.ascontiguousarray(load_file(str(root / WORDLLAMA_WEIGHTS))["embedding.weight"], dtype=np.float32)
    tok = Tokenizer.from_file(str(root / WORDLLAMA_TOKENIZER))
    tok.no_padding()
    tok.no_truncation()
    return matrix, tok


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


def wordllama_embed(texts: list[str]) -> np.ndarray:
    """Mean token embedding of each text (WordLlama's average pooling), L2-normalised: [len(texts), 256].
    The sum is a sparse (texts x vocabulary) token-count matrix times the embedding matrix: tokenizing is then
    ~90% of the time (a dense count matrix cost 2.2x more on the sample's web text, the padded gather 7x)."""
    from scipy import sparse

    matrix, tok = wordllama_model()
    vocab, dim = matrix.shape
    if not texts:
        return np.zeros((0, dim), np.float32)
    encodings = tok.encode_batch_fast(texts, add_special_tokens=False)
    lens = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(lens.sum()))
    np.clip(ids, 0, vocab - 1, out=ids)
    counts = sparse.csr_matrix((np.ones(len(ids), np.float32), ids, np.concatenate([[0], np.cumsum(lens)])),
                               shape=(len(texts), vocab))
    sums = np.asarray(counts @ matrix, dtype=np.float32)
    return l2_normalize(sums / np.maximum(lens, 1)[:, None])


def _embedding_array(vectors: np.ndarray) -> pa.Array:
    n, dim = vectors.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), type=pa.float32()))


def _wordllama_batches(max_chars: int) -> Any:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            texts = [(t or "")[:max_chars] for t in b.column("text").to_pylist()]
            yield pa.RecordBatch.from_arrays([b.column("doc_id"), _embedding_array(wordllama_embed(texts))],
                                             names=["doc_id", "embedding"])
    return run


def vector_matrix(arr: pa.Array, n: int) -> np.ndarray:
    """An Arrow list<float> column of ``n`` equal-length vectors as an [n, dim] float64 matrix."""
    flat = arr.flatten().to_numpy(zero_copy_only=False)  # flatten() honours a sliced array's offsets
    return flat.astype(np.float64).reshape(n, -1) if n else np.zeros((0, 0))


def unit_vectors(df: DataFrame, src: str, dst: str, mean: np.ndarray | None = None) -> DataFrame:
    """``doc_id`` and ``dst``: the ``src`` vectors minus ``mean`` (when given), scaled to unit length (zero vectors
    stay zero, also after centring), in numpy per Arrow batch. (Spark SQL's higher-order functions re-evaluate a norm
    for every element: a 256-dimensional normalisation was 282 s on 90K documents that way.)"""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            x = vector_matrix(b.column(src), b.num_rows)
            if mean is not None and b.num_rows:
                empty = ~x.any(axis=1)  # a document with no token stays the zero vector (nobody's duplicate)
                x = x - mean
                x[empty] = 0.0
            yield pa.RecordBatch.from_arrays([b.column("doc_id"), _embedding_array(l2_normalize(x))],
                                             names=["doc_id", dst])
    return df.select("doc_id", src).mapInArrow(run, f"doc_id string, {dst} array<float>")


def fit_sample(docs: DataFrame, cfg: SemDedupConfig) -> DataFrame:
    """The ``fit_sample`` documents with the smallest seeded xxhash64 of ``doc_id``, in that order, in one
    partition: the same rows in the same order whatever the input's partitioning."""
    h = F.xxhash64(F.lit(cfg.seed), F.col("doc_id"))
    return (docs.withColumn("_fit_hash", h).orderBy("_fit_hash", "doc_id").limit(cfg.fit_sample)
            .coalesce(1).sortWithinPartitions("_fit_hash", "doc_id").drop("_fit_hash"))


def embed(docs: DataFrame, cfg: SemDedupConfig, embedder: str | None = None) -> DataFrame:
    """``(doc_id, embedding array<float>)`` for every row of ``docs`` (``doc_id``, ``text``), L2-normalised."""
    name = embedder or cfg.embedder
    cut = docs.select("doc_id", F.substring("text", 1, cfg.max_chars).alias("text"))
    if name == "wordllama":
        return cut.mapInArrow(_wordllama_batches(cfg.max_chars), EMBEDDING_SCHEMA)
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import IDF, PCA, HashingTF, RegexTokenizer, Word2Vec
    from pyspark.ml.functions import vector_to_array

    if not cut.limit(1).count():  # nothing to fit on (MLlib's IDF and Word2Vec refuse an empty input)
        return cut.sparkSession.createDataFrame([], EMBEDDING_SCHEMA)
    words = RegexTokenizer(inputCol="text", outputCol="words", pattern=TOKEN_PATTERN, gaps=False, toLowercase=True)
    if name == "word2vec":
        stages: list[Any] = [words, Word2Vec(inputCol="words", outputCol="vec", vectorSize=cfg.w2v_dim,
                                             minCount=cfg.w2v_min_count, maxIter=cfg.w2v_max_iter, seed=cfg.seed,
                                             numPartitions=1)]
    elif name == "lsa":
        stages = [words, HashingTF(inputCol="words", outputCol="tf", numFeatures=cfg.lsa_features),
                  IDF(inputCol="tf", outputCol="tfidf"), PCA(inputCol="tfidf", outputCol="vec", k=cfg.lsa_dim)]
    else:
        raise ValueError(f"unknown embedder {name!r}")
    model = Pipeline(stages=stages).fit(fit_sample(cut, cfg))
    return unit_vectors(model.transform(cut).select("doc_id", vector_to_array("vec", "float32").alias("vec")),
                        "vec", "embedding")
