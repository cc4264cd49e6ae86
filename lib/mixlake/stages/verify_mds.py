"""Stage ``verify_mds``: see :func:`mixlake.stages.write_mds.run_verify`."""

from mixlake.stages.write_mds import run_verify as run

__all__ = ["run"]
