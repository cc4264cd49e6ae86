"""Errors every layer may raise (a leaf module: it imports nothing of mixlake)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


class SourceReadError(RuntimeError):
    """Reading a source file's bytes failed in the filesystem or object store (connection reset, timeout,
    throttling, a file that vanished): a transient fault, not bad data.

    Readers never quarantine it — it fails the Spark task, so Spark retries the task (``spark.task.maxFailures``) and
    the run either succeeds with the same output as a clean run or fails loudly. It is deliberately not an
    ``OSError``: decompressors and parsers report corruption as ``OSError`` subclasses, and must not be able to
    mistake one for the other.
    """
