"""Stage `ingest` as a job: `python jobs/ingest.py key=value ...` or `spark-submit jobs/ingest.py key=value ...`."""

import sys

from mixlake.cli import main

if __name__ == "__main__":
    sys.exit(main("ingest"))
