"""Hydra configuration tree, shipped as the ``mixlake.conf`` package."""
