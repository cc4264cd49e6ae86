"""Errors every layer may raise (a leaf module: it imports nothing of mixlake)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""
