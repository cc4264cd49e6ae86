"""Stage `sample` as a job: `python jobs/sample.py key=value ...` or `spark-submit jobs/sample.py key=value ...`."""

import sys

from mixlake.cli import main

if __name__ == "__main__":
    sys.exit(main("sample"))
