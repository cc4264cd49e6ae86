"""The whole pipeline: runs the configured ``stages`` in order (``python jobs/pipeline.py stages=[ingest] ...``)."""

import sys

from mixlake.cli import main

if __name__ == "__main__":
    sys.exit(main("pipeline"))
